package statedir

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"ddhcpd/src/control"
	"ddhcpd/src/lease"
)

// WriteShared replaces path atomically with data, as WriteFile does, but
// readable by everyone (mode 0644, as dnsmasq's lease file) and creating
// its directory when missing.
func WriteShared(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return writeFileWith(path, 0o644, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// DNSMasqLeases renders a lease file in dnsmasq's format: the assigned leases that have not
// run out at now (monotonic), in address order, their expiry as the wall
// time base+Expires.
func DNSMasqLeases(ls []lease.Lease, now time.Duration, base time.Time) []byte {
	var b bytes.Buffer
	for _, l := range ls {
		if l.State != lease.Assigned || l.Expires <= now || len(l.HW) == 0 {
			continue
		}
		host := "*"
		if control.ValidHostname(l.Hostname) {
			host = l.Hostname
		}
		id := "*"
		if len(l.ClientID) > 0 {
			id = hexColons(l.ClientID)
		}
		fmt.Fprintf(&b, "%d %s %s %s %s\n", base.Add(l.Expires).Unix(), hexColons(l.HW), l.Addr, host, id)
	}
	return b.Bytes()
}

// hexColons writes bytes as dnsmasq does: 01:02:0a.
func hexColons(p []byte) string {
	var s strings.Builder
	for i, c := range p {
		if i > 0 {
			s.WriteByte(':')
		}
		fmt.Fprintf(&s, "%02x", c)
	}
	return s.String()
}
