package control

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
	Local    bool    `json:"local"` // in a block this node serves
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
