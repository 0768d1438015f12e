package rpcd

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"ddhcpd/src/control"
)

// callRaw runs one call and returns the exact output.
func callRaw(t *testing.T, socket string, args ...string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	status := Main(args, strings.NewReader(""), &out, socket)
	return out.String(), status
}

// TestIPv4Leases: odhcpd's shape, field for field, of the leases odhcpd
// would list: offered and assigned ones whose time has not run out.
func TestIPv4Leases(t *testing.T) {
	status := control.Status{Node: "0123456789abcdef", DHCP: true, Interfaces: []string{"br-client"}}
	leases := []control.Lease{
		{Addr: "10.0.0.17", State: "assigned", HW: "02:00:00:00:00:01", Hostname: "laptop", Expires: 299.7, Block: 1, Local: true},
		{Addr: "10.0.0.18", State: "offered", HW: "02:00:00:00:00:02", Expires: 11.2, Block: 1, Local: true},
		{Addr: "10.0.0.19", State: "assigned", HW: "02:00:00:00:00:03", Hostname: "my phone", Expires: 60, Block: 1, Local: true, Static: true},
		{Addr: "10.0.0.20", State: "assigned", HW: "02:00:00:00:00:04", Expires: -3, Block: 1, Local: true},
		{Addr: "10.0.0.21", State: "released", HW: "02:00:00:00:00:05", Expires: 100, Block: 1, Local: true},
		{Addr: "10.0.0.22", State: "declined", Expires: 3000, Block: 1, Local: true},
		{Addr: "10.0.0.33", State: "assigned", HW: "02:00:00:00:00:06", Client: "id:01ff", Expires: 42, Block: 2},
	}
	sock := fakeDaemon(t, map[string]any{"status": status, "leases": leases})
	got, code := callRaw(t, sock, "call", "ipv4leases")
	want := `{"device":{"br-client":{"leases":[` +
		`{"mac":"020000000001","hostname":"laptop","accept-reconf-nonce":false,"flags":["bound"],"address":"10.0.0.17","valid":299},` +
		`{"mac":"020000000002","hostname":"","accept-reconf-nonce":false,"flags":[],"address":"10.0.0.18","valid":11},` +
		`{"mac":"020000000003","hostname":"my phone","accept-reconf-nonce":false,"flags":["bound","static","broken-hostname"],"address":"10.0.0.19","valid":60},` +
		`{"mac":"020000000006","hostname":"","accept-reconf-nonce":false,"flags":["bound"],"address":"10.0.0.33","valid":42}` +
		`]}}}` + "\n"
	if code != 0 || got != want {
		t.Errorf("ipv4leases (%d):\n%s\nwant:\n%s", code, got, want)
	}
	// rpcd's checks: one line, one object.
	if obj, _ := run(t, sock, "", "call", "ipv4leases"); obj["device"] == nil {
		t.Errorf("no device: %v", obj)
	}

	// Several client interfaces: one device naming them all.
	status.Interfaces = []string{"br-client", "br-guest"}
	sock = fakeDaemon(t, map[string]any{"status": status, "leases": []control.Lease{}})
	if got, _ := callRaw(t, sock, "call", "ipv4leases"); got != `{"device":{"br-client,br-guest":{"leases":[]}}}`+"\n" {
		t.Errorf("two interfaces, no leases: %s", got)
	}
	// No DHCP service (-S): no device, as odhcpd lists only the
	// interfaces it serves.
	status.DHCP = false
	sock = fakeDaemon(t, map[string]any{"status": status, "leases": nil})
	if got, _ := callRaw(t, sock, "call", "ipv4leases"); got != `{"device":{}}`+"\n" {
		t.Errorf("without DHCP: %s", got)
	}
}

func TestIPv4LeasesErrors(t *testing.T) {
	got, status := run(t, filepath.Join(t.TempDir(), "none.sock"), "", "call", "ipv4leases")
	if status != 1 || got["code"] != CodeUnreachable {
		t.Errorf("daemon down: %v (%d)", got, status)
	}
	// A daemon without "leases" (no such command): its error is passed on.
	sock := fakeDaemon(t, map[string]any{"status": control.Status{DHCP: true}})
	got, status = run(t, sock, "", "call", "ipv4leases")
	if status != 1 || got["code"] != control.CodeUnknownCommand {
		t.Errorf("no leases command: %v (%d)", got, status)
	}
	if got, status := run(t, sock, "[]", "call", "ipv4leases"); status != 2 || got["code"] != CodeBadInput {
		t.Errorf("arguments not an object: %v (%d)", got, status)
	}
}
