package rpcd

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"ddhcpd/src/control"
)

// ipv4Leases answers like odhcpd's "ubus call dhcp ipv4leases" (OpenWrt
// 24.10's odhcpd, src/ubus.c), so that tools reading odhcpd's leases can
// read ddhcpd's the same way:
//
//	{"device": {"br-client": {"leases": [{"mac": "020000000001",
//	  "hostname": "laptop", "accept-reconf-nonce": false, "flags": ["bound"],
//	  "address": "10.116.224.17", "valid": 299}]}}}
//
// mac is the hardware address as hex without separators, hostname "" when
// the client sent none, accept-reconf-nonce always false (ddhcpd sends no
// FORCERENEW), flags "bound" for an assigned lease (an offered one has
// none), "static" for a host reservation and "broken-hostname" for a name
// unfit for DNS, valid the seconds left. Only offered and assigned leases
// whose time has not run out are listed, as odhcpd lists them. odhcpd
// leaves out "reqopts" when it knows no requested options; ddhcpd does not
// keep them.
//
// odhcpd groups the leases by the Linux device of the interface that
// serves them. ddhcpd serves all its client interfaces from one table and
// does not record which one a lease came through: the one device is the
// client interface, or the client interfaces joined by "," when there are
// several. Without DHCP service (-S) "device" is empty.
const ipv4Leases = "ipv4leases"

// odhcpdLease is one lease as odhcpd writes it, in its order.
type odhcpdLease struct {
	MAC          string   `json:"mac"`
	Hostname     string   `json:"hostname"`
	AcceptReconf bool     `json:"accept-reconf-nonce"`
	Flags        []string `json:"flags"`
	Address      string   `json:"address"`
	Valid        uint32   `json:"valid"`
}

type odhcpdDevice struct {
	Leases []odhcpdLease `json:"leases"`
}

type odhcpdLeases struct {
	Device map[string]odhcpdDevice `json:"device"`
}

// callIPv4Leases asks the daemon for its status (the client interfaces) and
// its leases.
func callIPv4Leases(socket string) ([]byte, int) {
	var st control.Status
	if err := control.Call(socket, "status", nil, &st); err != nil {
		return failureOf(err), 1
	}
	var rows []control.Lease
	if err := control.Call(socket, "leases", nil, &rows); err != nil {
		return failureOf(err), 1
	}
	out, err := json.Marshal(odhcpdShape(st, rows))
	if err != nil {
		return failure(CodeUnreachable, fmt.Sprintf("encode reply: %v", err)), 1
	}
	return line(out), 0
}

// odhcpdShape converts the daemon's lease rows.
func odhcpdShape(st control.Status, rows []control.Lease) odhcpdLeases {
	out := odhcpdLeases{Device: map[string]odhcpdDevice{}}
	if !st.DHCP {
		return out
	}
	dev := odhcpdDevice{Leases: []odhcpdLease{}}
	for _, r := range rows {
		if r.State != "offered" && r.State != "assigned" || r.Expires < 0 || r.HW == "" {
			continue
		}
		l := odhcpdLease{
			MAC:      strings.ReplaceAll(strings.ToLower(r.HW), ":", ""),
			Hostname: r.Hostname,
			Flags:    []string{},
			Address:  r.Addr,
			Valid:    uint32(min(math.Floor(r.Expires), math.MaxUint32-1)),
		}
		if r.State == "assigned" {
			l.Flags = append(l.Flags, "bound")
		}
		if r.Static {
			l.Flags = append(l.Flags, "static")
		}
		if r.Hostname != "" && !control.ValidHostname(r.Hostname) {
			l.Flags = append(l.Flags, "broken-hostname")
		}
		dev.Leases = append(dev.Leases, l)
	}
	out.Device[strings.Join(st.Interfaces, ",")] = dev
	return out
}
