package control

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// optionKinds says how the values of well-known DHCP options read
// (RFC 2132 and later): the name shown and the type of EncodeOptionValue's
// forms ("ips", "string", "u8", "u16", "u32", "bool"; "hex" for the rest).
var optionKinds = map[uint8]struct{ name, typ string }{
	1:   {"subnet_mask", "ips"},
	2:   {"time_offset", "hex"}, // signed
	3:   {"router", "ips"},
	4:   {"time_server", "ips"},
	5:   {"name_server", "ips"},
	6:   {"dns_server", "ips"},
	7:   {"log_server", "ips"},
	8:   {"cookie_server", "ips"},
	9:   {"lpr_server", "ips"},
	10:  {"impress_server", "ips"},
	11:  {"rlp_server", "ips"},
	12:  {"hostname", "string"},
	13:  {"boot_file_size", "u16"},
	14:  {"merit_dump", "string"},
	15:  {"domain_name", "string"},
	16:  {"swap_server", "ips"},
	17:  {"root_path", "string"},
	18:  {"extensions_path", "string"},
	19:  {"ip_forwarding", "bool"},
	20:  {"non_local_source_routing", "bool"},
	22:  {"max_reassembly", "u16"},
	23:  {"default_ttl", "u8"},
	24:  {"mtu_aging_timeout", "u32"},
	26:  {"mtu", "u16"},
	27:  {"all_subnets_local", "bool"},
	28:  {"broadcast", "ips"},
	29:  {"mask_discovery", "bool"},
	30:  {"mask_supplier", "bool"},
	31:  {"router_discovery", "bool"},
	32:  {"router_solicitation", "ips"},
	33:  {"static_routes", "ips"},
	34:  {"trailer_encapsulation", "bool"},
	35:  {"arp_cache_timeout", "u32"},
	36:  {"ethernet_encapsulation", "bool"},
	37:  {"tcp_ttl", "u8"},
	38:  {"tcp_keepalive_interval", "u32"},
	39:  {"tcp_keepalive_garbage", "bool"},
	40:  {"nis_domain", "string"},
	41:  {"nis_server", "ips"},
	42:  {"ntp_server", "ips"},
	44:  {"netbios_name_server", "ips"},
	45:  {"netbios_dd_server", "ips"},
	46:  {"netbios_node_type", "u8"},
	47:  {"netbios_scope", "string"},
	48:  {"x_font_server", "ips"},
	49:  {"x_display_manager", "ips"},
	50:  {"requested_address", "ips"},
	51:  {"lease_time", "u32"},
	52:  {"overload", "u8"},
	53:  {"message_type", "u8"},
	54:  {"server_id", "ips"},
	56:  {"message", "string"},
	57:  {"max_message_size", "u16"},
	58:  {"renewal_time", "u32"},
	59:  {"rebinding_time", "u32"},
	60:  {"vendor_class", "string"},
	61:  {"client_id", "hex"},
	64:  {"nisplus_domain", "string"},
	65:  {"nisplus_server", "ips"},
	66:  {"tftp_server", "string"},
	67:  {"bootfile", "string"},
	68:  {"mobile_ip_home_agent", "ips"},
	69:  {"smtp_server", "ips"},
	70:  {"pop3_server", "ips"},
	71:  {"nntp_server", "ips"},
	72:  {"www_server", "ips"},
	73:  {"finger_server", "ips"},
	74:  {"irc_server", "ips"},
	75:  {"streettalk_server", "ips"},
	76:  {"stda_server", "ips"},
	82:  {"relay_agent_info", "hex"},
	114: {"captive_portal", "string"},
	118: {"subnet_selection", "ips"},
	119: {"domain_search", "hex"},
	121: {"classless_routes", "hex"},
	252: {"wpad", "string"},
}

// DescribeOption decodes an option's bytes as well as its code allows.
// The value reads back with the type through EncodeOptionValue in package
// config; bytes that do not fit the code's usual type are shown as hex.
func DescribeOption(code uint8, data []byte, always bool) OptionInfo {
	kind := optionKinds[code]
	info := OptionInfo{
		Code:   code,
		Name:   kind.name,
		Len:    len(data),
		Hex:    hex.EncodeToString(data),
		Type:   "hex",
		Value:  hex.EncodeToString(data),
		Always: always,
	}
	switch kind.typ {
	case "ips":
		if len(data) == 0 || len(data)%4 != 0 {
			break
		}
		addrs := make([]string, 0, len(data)/4)
		for i := 0; i < len(data); i += 4 {
			addrs = append(addrs, netip.AddrFrom4([4]byte(data[i:i+4])).String())
		}
		info.Type, info.Value = "ips", strings.Join(addrs, ",")
	case "string":
		if printable(data) {
			info.Type, info.Value = "string", string(data)
		}
	case "u32":
		if len(data) == 4 {
			info.Type, info.Value = "u32", strconv.FormatUint(uint64(binary.BigEndian.Uint32(data)), 10)
		}
	case "u16":
		if len(data) == 2 {
			info.Type, info.Value = "u16", strconv.FormatUint(uint64(binary.BigEndian.Uint16(data)), 10)
		}
	case "u8":
		if len(data) == 1 {
			info.Type, info.Value = "u8", strconv.FormatUint(uint64(data[0]), 10)
		}
	case "bool":
		if len(data) == 1 && data[0] <= 1 {
			info.Type, info.Value = "bool", strconv.FormatBool(data[0] == 1)
		}
	}
	return info
}

// printable reports whether b is non-empty UTF-8 text without control
// characters.
func printable(b []byte) bool {
	if len(b) == 0 || !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// ParseLevel reads the "level" argument of "loglevel": a JSON string
// (debug, info, warn, warning, error, fatal, or a digit) or a number in
// the C ddhcpd's numbering (0 fatal and 1 error map to error, 2 warning,
// 3 info, 4 debug).
func ParseLevel(raw json.RawMessage) (slog.Level, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil {
			return 0, fmt.Errorf("level %s: want a name or a number 0..4", raw)
		}
		s = n.String()
	}
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "0", "fatal", "1", "error", "err":
		return slog.LevelError, nil
	case "2", "warning", "warn":
		return slog.LevelWarn, nil
	case "3", "info":
		return slog.LevelInfo, nil
	case "4", "debug":
		return slog.LevelDebug, nil
	}
	return 0, fmt.Errorf("level %s: want debug, info, warn, error or 0..4", raw)
}

// DescribeLevel is the "loglevel" result for l.
func DescribeLevel(l slog.Level) LogLevel {
	switch {
	case l <= slog.LevelDebug:
		return LogLevel{Level: "debug", CLevel: 4}
	case l <= slog.LevelInfo:
		return LogLevel{Level: "info", CLevel: 3}
	case l <= slog.LevelWarn:
		return LogLevel{Level: "warn", CLevel: 2}
	}
	return LogLevel{Level: "error", CLevel: 1}
}
