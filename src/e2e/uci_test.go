package e2e

import (
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ddhcpd/src/control"
	"ddhcpd/src/nettest"
)

const uciBase = `
config ddhcpd 'settings'
	option enabled '1'
	list mesh_interface 'bat0'
	list client_interface 'c0'
	option pool '10.0.0.0/24'
	option block_size_exp '4'
	option skip_learning '1'
	option server_id '10.0.0.1'
	option lease_time '300'
	option control_socket 'SOCK'
	option state_dir 'STATE'

config option
	option code 'router'
	option value '10.0.0.254'
`

// TestUCIAndReload: the daemon runs from a UCI file alone; a SIGHUP after
// the file changed applies new options and the lease time without dropping
// leases; -check-config reports file, line, option and value.
func TestUCIAndReload(t *testing.T) {
	l := newDHCPLab(t, 1)
	uci := filepath.Join(l.dir, "ddhcpd.uci")
	body := strings.NewReplacer("SOCK", l.sock, "STATE", l.state).Replace(uciBase)
	os.WriteFile(uci, []byte(body), 0o600)
	l.args = []string{"-uci", uci}
	l.start()
	a := l.run(0, "-mac", "02:00:00:00:2a:01", "-prl", "42", "dora")
	if a.Type != "ACK" || a.Options["51"] != "0000012c" || a.Options["3"] != hex.EncodeToString([]byte{10, 0, 0, 254}) {
		t.Fatalf("lease from the UCI settings: %+v", a)
	}
	if _, ok := a.Options["42"]; ok {
		t.Fatal("option 42 before it was configured")
	}
	// Add NTP and a longer lease time, then SIGHUP.
	os.WriteFile(uci, []byte(strings.Replace(body, "option lease_time '300'", "option lease_time '600'", 1)+`
config option
	option code 'ntp'
	option value '10.0.0.253'
`), 0o600)
	if out, err := exec.Command("kill", "-HUP", fmt.Sprint(l.proc.Pid())).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	eventually(t, 5*time.Second, "reloaded", func() error {
		if l.stats()["reload"] < 1 {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	b := l.run(0, "-mac", "02:00:00:00:2a:02", "-prl", "42", "dora")
	if b.Options["42"] != hex.EncodeToString([]byte{10, 0, 0, 253}) || b.Options["51"] != "00000258" {
		t.Errorf("after reload: %+v", b)
	}
	if r, ok := l.leaseOf(a.Yiaddr); !ok || r.State != "assigned" {
		t.Errorf("lease lost over the reload: %+v", r)
	}
	var st control.Status
	control.Call(l.sock, "status", nil, &st)
	if st.Owned == 0 {
		t.Error("blocks lost over the reload")
	}

	// -check-config: every error with file, line, option and value, exit 1.
	bad := filepath.Join(l.dir, "bad.uci")
	os.WriteFile(bad, []byte(strings.Replace(strings.Replace(body, "'10.0.0.0/24'", "'10.0.0.0/33'", 1),
		"option block_size_exp '4'", "option block_size_exp '9'", 1)), 0o600)
	cmd := exec.Command(nettest.BuildBinary(t, "ddhcpd/src/cmd/ddhcpd"), "-uci", bad, "-check-config")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("check-config of a bad file: %v\n%s", err, out)
	}
	for _, want := range []string{bad + ":6: option pool '10.0.0.0/33'", bad + ":7: option block_size_exp '9'"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("check-config output lacks %q:\n%s", want, out)
		}
	}
	if out, err := exec.Command(nettest.BuildBinary(t, "ddhcpd/src/cmd/ddhcpd"), "-uci", uci, "-check-config").CombinedOutput(); err != nil || !strings.Contains(string(out), "ok") {
		t.Errorf("check-config of a good file: %v %s", err, out)
	}
}
