package control

import "encoding/json"

// Status is the result of "status".
type Status struct {
	Node          string   `json:"node"`
	Pool          string   `json:"pool"`
	BlockSize     int      `json:"block_size"`
	Blocks        uint32   `json:"blocks"`
	Learning      bool     `json:"learning"`
	Owned         int      `json:"owned"`
	Tracked       int      `json:"tracked"`
	SpareLeases   int      `json:"spare_leases"`
	BlockTimeout  int      `json:"block_timeout"`
	UptimeSeconds float64  `json:"uptime"`
	Version       string   `json:"version"`
	Mesh          []Iface  `json:"mesh"`
	Interfaces    []string `json:"client_interfaces"`
	DHCP          bool     `json:"dhcp"`
	ServerID      string   `json:"server_id,omitempty"`
	Leases        int      `json:"leases"`
}

// Lease is one row of "leases".
type Lease struct {
	Addr     string  `json:"addr"`
	State    string  `json:"state"`
	HW       string  `json:"hw,omitempty"`
	Client   string  `json:"client,omitempty"`
	Hostname string  `json:"hostname,omitempty"`
	Expires  float64 `json:"expires"` // seconds left (negative: expired, not yet reclaimed)
	Block    uint32  `json:"block"`
	Local    bool    `json:"local"`            // in a block this node serves
	Static   bool    `json:"static,omitempty"` // the address is reserved for this client (a host section)
}

// Iface is a mesh interface's state.
type Iface struct {
	Name      string `json:"name"`
	Up        bool   `json:"up"`
	Open      bool   `json:"open"`
	LinkLocal string `json:"link_local,omitempty"`
	Error     string `json:"error,omitempty"`
}

// Block is one row of "blocks": every block that is not free.
type Block struct {
	Index     uint32  `json:"index"`
	First     string  `json:"first"` // first address of the block
	State     string  `json:"state"`
	StateNum  int     `json:"state_num"` // the C ddhcpctl's numbering
	Owner     string  `json:"owner,omitempty"`
	OwnerAddr string  `json:"owner_addr,omitempty"`
	Timeout   float64 `json:"timeout,omitempty"` // seconds left, claimed and tentative blocks
	Inquiries int     `json:"inquiries,omitempty"`
}

// Stats is the result of "stats": counters by name.
type Stats map[string]uint64

// Options is the result of "options": the DHCP options in force.
type Options struct {
	DHCP      bool         `json:"dhcp"`       // false with -S: nothing is served
	LeaseTime int64        `json:"lease_time"` // seconds
	Options   []OptionInfo `json:"options"`    // by code
}

// OptionInfo is one DHCP option in force. Type and Value are the option
// decoded as well as its code allows, in the form "option_set" takes back
// (type "hex" when nothing better fits).
type OptionInfo struct {
	Code    uint8  `json:"code"`
	Name    string `json:"name,omitempty"`
	Len     int    `json:"len"`
	Hex     string `json:"hex"`
	Type    string `json:"type"`
	Value   string `json:"value"`
	Always  bool   `json:"always"`            // sent even when the client does not ask
	Derived bool   `json:"derived,omitempty"` // set by the server, not configured
}

// OptionSetArgs are the arguments of "option_set". The value is given in
// exactly one form: Hex; Type and Value (types ip, ips, u8, u16, u32,
// string, hex, bool); or C, the C ddhcpd's CODE:LEN:B1.B2... form, which
// carries its own code. Always nil keeps the always-send flag of the option
// replaced (false for a new one). Code 51 sets the lease time.
type OptionSetArgs struct {
	Code   int    `json:"code,omitempty"`
	Hex    string `json:"hex,omitempty"`
	Type   string `json:"type,omitempty"`
	Value  string `json:"value,omitempty"`
	C      string `json:"c,omitempty"`
	Always *bool  `json:"always,omitempty"`
}

// OptionRemoveArgs are the arguments of "option_remove".
type OptionRemoveArgs struct {
	Code int `json:"code"`
}

// LogLevelArgs are the arguments of "loglevel": Level is a JSON string
// (debug, info, warn, warning, error, or a digit) or a number in the C
// ddhcpd's numbering (0 fatal and 1 error: error, 2 warning, 3 info, 4
// debug). Without it the level is only reported.
type LogLevelArgs struct {
	Level json.RawMessage `json:"level,omitempty"`
}

// LogLevel is the result of "loglevel".
type LogLevel struct {
	Level  string `json:"level"`   // debug, info, warn or error
	CLevel int    `json:"c_level"` // the C ddhcpd's number: 1 error .. 4 debug
}

// Tree is the result of "tree", the spanning-tree overlay's state. Without
// the overlay it is {"enabled": false}; with it the fields of TreeState
// follow.
type Tree struct {
	Enabled bool `json:"enabled"`
	*TreeState
}

// TreeState is the overlay's view of the tree and of the walk in progress.
type TreeState struct {
	Node       string          `json:"node"`
	Valid      bool            `json:"valid"` // a finished tree is in force
	Root       string          `json:"root"`  // the lowest id of the partition; empty without a tree
	Epoch      uint32          `json:"epoch"`
	Depth      int             `json:"depth"` // 0 at the root
	Size       int             `json:"size"`  // nodes in the tree
	Parent     *TreePeer       `json:"parent"`
	Children   []TreeChild     `json:"children"`
	Walk       string          `json:"walk"` // this node's part in the current walk: idle, working, finishing
	WalkOrigin string          `json:"walk_origin,omitempty"`
	WalkEpoch  uint32          `json:"walk_epoch,omitempty"`
	Neighbours []TreeNeighbour `json:"neighbours"`
}

// TreePeer is a tree neighbour.
type TreePeer struct {
	ID   string `json:"id"`
	Addr string `json:"addr,omitempty"` // link-local address, with the interface as zone
}

// TreeChild is a child in the tree.
type TreeChild struct {
	TreePeer
	Subtree int `json:"subtree"` // nodes in its subtree, itself included
}

// TreeNeighbour is a node heard on a mesh interface.
type TreeNeighbour struct {
	ID        string   `json:"id"`
	Links     []string `json:"links"`
	Symmetric bool     `json:"symmetric"`      // it hears us too
	Root      string   `json:"root,omitempty"` // of its tree, from its last HELLO
	Epoch     uint32   `json:"epoch,omitempty"`
}
