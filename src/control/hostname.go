package control

// ValidHostname reports whether a client's hostname (DHCP option 12) can
// stand as a DNS name in a hosts or lease file: dot-separated labels of 1 to
// 63 letters, digits, "-" and "_", none starting or ending with "-" or "_",
// at most 253 bytes in all. The lease file writes "*" for any other name (as
// dnsmasq does for a name it will not use), and the ipv4leases method flags
// it "broken-hostname" (as odhcpd does).
func ValidHostname(name string) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	start := 0
	for i := 0; i <= len(name); i++ {
		if i < len(name) && name[i] != '.' {
			c := name[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
			continue
		}
		label := name[start:i]
		if len(label) == 0 || len(label) > 63 || edge(label[0]) || edge(label[len(label)-1]) {
			return false
		}
		start = i + 1
	}
	return true
}

func edge(c byte) bool { return c == '-' || c == '_' }
