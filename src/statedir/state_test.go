package statedir

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ddhcpd/src/lease"
)

func TestStateRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	hw := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	ls := []lease.Lease{
		{Addr: netip.MustParseAddr("10.0.0.9"), State: lease.Assigned, Client: lease.KeyOf(nil, hw), HW: hw, Hostname: "laptop", Expires: 100 * time.Second, Granted: 300 * time.Second},
		{Addr: netip.MustParseAddr("10.0.0.10"), State: lease.Declined, Expires: 3600 * time.Second},
		{Addr: netip.MustParseAddr("10.0.0.11"), State: lease.Offered, ClientID: []byte{1, 2}, Client: lease.KeyOf([]byte{1, 2}, hw), Expires: 50 * time.Second},
	}
	saved := State{SavedAt: time.Now(), Node: "0102030405060708", Pool: "10.0.0.0/24", SizeExp: 3, Blocks: []uint32{1}, Leases: Records(40*time.Second, ls)}
	if err := SaveState(path, saved); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode())
	}
	got, err := LoadState(path)
	if err != nil || len(got.Leases) != 3 || got.Blocks[0] != 1 {
		t.Fatalf("%+v %v", got, err)
	}
	// Restored 20 s after saving, in a process whose clock starts at 5 s:
	// the offer (10 s left at save) is gone, the others keep their time.
	back, bad := Leases(5*time.Second, 20*time.Second, got.Leases)
	if bad != 0 || len(back) != 2 {
		t.Fatalf("%d back, %d bad: %+v", len(back), bad, back)
	}
	if l := back[0]; l.State != lease.Assigned || l.Expires != 5*time.Second+60*time.Second-20*time.Second || l.Hostname != "laptop" || l.HW.String() != hw.String() {
		t.Errorf("assigned lease back as %+v", l)
	}
}

func TestDamagedStateSetAside(t *testing.T) {
	for name, content := range map[string]string{
		"garbage":   "{{{",
		"truncated": `{"version":1,"leases":[{"addr":"10.0`,
		"version":   `{"version":99}`,
		"binary":    "\x00\xff\x00",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.json")
			os.WriteFile(path, []byte(content), 0o600)
			_, err := LoadState(path)
			if err == nil || !strings.Contains(err.Error(), "set aside") {
				t.Fatalf("err %v", err)
			}
			if _, err := os.Stat(path + ".bad"); err != nil {
				t.Error("not set aside")
			}
			if _, err := LoadState(path); !errors.Is(err, ErrNoState) {
				t.Errorf("after setting aside: %v", err)
			}
		})
	}
}

func TestBadRecordsSkipped(t *testing.T) {
	rs := []Record{
		{Addr: "10.0.0.1", State: "assigned", Remaining: 10},
		{Addr: "nonsense", State: "assigned", Remaining: 10},
		{Addr: "10.0.0.2", State: "bogus", Remaining: 10},
		{Addr: "10.0.0.3", State: "assigned", HW: "zz", Remaining: 10},
		{Addr: "10.0.0.4", State: "assigned", ClientID: "xyz", Remaining: 10},
		{Addr: "::1", State: "assigned", Remaining: 10},
	}
	out, bad := Leases(0, 0, rs)
	if len(out) != 1 || bad != 5 {
		t.Errorf("%d kept, %d bad", len(out), bad)
	}
}

// FuzzLoadState: any file content is either loaded or set aside, never a panic.
func FuzzLoadState(f *testing.F) {
	f.Add([]byte(`{"version":1,"blocks":[1],"leases":[{"addr":"10.0.0.9","state":"assigned","remaining":30}]}`))
	f.Add([]byte("{}"))
	f.Add([]byte(`{"version":1,"leases":[{"addr":"10.0.0.9","state":"assigned","remaining":1e308}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), "state.json")
		os.WriteFile(path, b, 0o600)
		s, err := LoadState(path)
		if err == nil {
			Leases(time.Hour, time.Minute, s.Leases)
		}
	})
}
