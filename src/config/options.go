package config

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// ParseTypedOption parses CODE:TYPE:VALUE, the form UCI's typed options map
// to. TYPE is ip (one or more addresses, comma separated), ips (the same),
// u8, u16, u32, string, hex or bool.
func ParseTypedOption(s string) (Option, error) {
	code, rest, ok := strings.Cut(s, ":")
	typ, value, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 {
		return Option{}, errors.New("want CODE:TYPE:VALUE")
	}
	n, err := strconv.Atoi(code)
	if err != nil || n < 1 || n > 254 {
		return Option{}, errors.New("option code must be 1..254")
	}
	data, err := EncodeOptionValue(typ, value)
	if err != nil {
		return Option{}, err
	}
	return Option{Code: uint8(n), Data: data}, nil
}

// EncodeOptionValue turns a typed value into option bytes.
func EncodeOptionValue(typ, value string) ([]byte, error) {
	var out []byte
	switch typ {
	case "ip", "ips":
		for _, f := range strings.Split(value, ",") {
			a, err := netip.ParseAddr(strings.TrimSpace(f))
			if err != nil || !a.Is4() {
				return nil, fmt.Errorf("%q is not an IPv4 address", f)
			}
			out = append(out, a.AsSlice()...)
		}
	case "u8", "u16", "u32":
		bits := map[string]int{"u8": 8, "u16": 16, "u32": 32}[typ]
		v, err := strconv.ParseUint(value, 10, bits)
		if err != nil {
			return nil, fmt.Errorf("%q is not an unsigned %d-bit integer", value, bits)
		}
		out = binary.BigEndian.AppendUint64(nil, v)[8-bits/8:]
	case "bool":
		switch value {
		case "1", "true", "yes", "on":
			out = []byte{1}
		case "0", "false", "no", "off":
			out = []byte{0}
		default:
			return nil, fmt.Errorf("%q is not a boolean", value)
		}
	case "string":
		out = []byte(value)
	case "hex":
		b, err := hex.DecodeString(strings.ReplaceAll(strings.ReplaceAll(value, ":", ""), " ", ""))
		if err != nil {
			return nil, fmt.Errorf("%q is not hexadecimal", value)
		}
		out = b
	default:
		return nil, fmt.Errorf("unknown option type %q (ip, ips, u8, u16, u32, string, hex, bool)", typ)
	}
	if len(out) == 0 || len(out) > 255*4 {
		return nil, fmt.Errorf("option value of %d bytes", len(out))
	}
	return out, nil
}

// ParseHost parses HW=IP where HW is a MAC address or id:HEX.
func ParseHost(s string) (Host, error) {
	who, ip, ok := strings.Cut(s, "=")
	if !ok {
		return Host{}, errors.New("want MAC=IP or id:HEX=IP")
	}
	var h Host
	a, err := netip.ParseAddr(strings.TrimSpace(ip))
	if err != nil || !a.Is4() {
		return Host{}, fmt.Errorf("%q is not an IPv4 address", ip)
	}
	h.Addr = a
	who = strings.TrimSpace(who)
	if id, ok := strings.CutPrefix(who, "id:"); ok {
		if h.ClientID, err = hex.DecodeString(strings.ReplaceAll(id, ":", "")); err != nil || len(h.ClientID) == 0 {
			return Host{}, fmt.Errorf("client id %q is not hexadecimal", id)
		}
		return h, nil
	}
	if h.MAC, err = net.ParseMAC(who); err != nil {
		return Host{}, fmt.Errorf("%q is not a MAC address", who)
	}
	return h, nil
}
