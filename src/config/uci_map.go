package config

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// This file maps a UCI file onto Config. The schema (files/etc/config/ddhcpd
// is the commented example):
//
//	config ddhcpd 'settings'     the settings; each option has a flag
//	config option                a typed DHCP option: code, type, value, always
//	config dhcp_option           a raw DHCP option as the gluon package writes it: code, len, payload
//	config host                  a host reservation: mac or client_id, ip, name
//
// The option names of the gluon ddhcpd package (freifunk-gluon/community-
// packages, ffgraz-ddhcpd) are accepted in the ddhcpd section as well; see
// uciCanonical. Unknown sections and options are warnings, not errors, so a
// file written for a newer version still starts the daemon.

// DefaultUCIInterface is the mesh and the client interface when a UCI file
// names none, as the gluon package's init script does.
const DefaultUCIInterface = "br-client"

// uciCanonical maps the gluon package's option names to ours.
func uciCanonical(name string) string {
	switch name {
	case "server_interface":
		return "mesh_interface"
	case "dhcp_interface":
		return "client_interface"
	case "block_network":
		return "pool"
	case "block_size_pow":
		return "block_size_exp"
	case "spare_blocks": // the gluon package writes spare_leases, as we do
		return "spare_leases"
	case "dhcp_lease_time":
		return "lease_time"
	}
	return name
}

// uciSource remembers where the settings read from a UCI file came from, so
// that problems found once everything is read (the pool's geometry, a host
// outside the pool) name the file's line.
type uciSource struct {
	origins map[string]*UCIError // by flag name, or flag+"\x00"+value for list items
	bad     map[string]bool      // flags whose value in the file was rejected
}

// blame returns the problem as a *UCIError at the line that set the flag,
// or nil when the file did not set it.
func (s *uciSource) blame(flag, value, reason string) error {
	if s == nil {
		return nil
	}
	o := s.origins[flag+"\x00"+value]
	if o == nil {
		o = s.origins[flag]
	}
	if o == nil {
		return nil
	}
	e := *o
	e.Reason = reason
	return &e
}

// failed says whether the file's value for flag was rejected.
func (s *uciSource) failed(flag string) bool {
	return s != nil && s.bad[flag]
}

// uciMapper applies one file to a Config.
type uciMapper struct {
	file  *UCIFile
	c     *Config
	fs    *flag.FlagSet // writes into c
	src   *uciSource
	warns []error
	errs  []error

	settings            *UCISection
	leaseTime, option51 *UCIError // where the lease time was set, and option 51
	lease51             time.Duration
	serverID, option54  *UCIError
	server54            netip.Addr
	optionLine          map[uint8]int // where each option code was set
}

// applyUCI applies the file's settings to c. It returns where they came
// from, the warnings and the errors.
func applyUCI(f *UCIFile, c *Config) (*uciSource, []error, []error) {
	m := &uciMapper{
		file:       f,
		c:          c,
		fs:         newFlagSet(c, new(flagVars)),
		src:        &uciSource{origins: map[string]*UCIError{}, bad: map[string]bool{}},
		optionLine: map[uint8]int{},
	}
	c.MeshInterfaces = []string{DefaultUCIInterface}
	c.ClientInterfaces = []string{DefaultUCIInterface}
	for _, s := range f.Sections {
		switch s.Type {
		case "ddhcpd":
			m.main(s)
		case "option":
			m.typedOption(s)
		case "dhcp_option":
			m.rawOption(s)
		case "host":
			m.host(s)
		default:
			m.warn(m.sectionAt(s), fmt.Sprintf("unknown section type %s, ignored", quoteUCI(s.Type)))
		}
	}
	m.finish()
	return m.src, m.warns, m.errs
}

func (m *uciMapper) at(s *UCISection, o *UCIOption, v UCIValue) *UCIError {
	return &UCIError{File: m.file.Name, Line: v.Line, Section: s.Ref(), Option: o.Name, Value: v.Text}
}

func (m *uciMapper) sectionAt(s *UCISection) *UCIError {
	return &UCIError{File: m.file.Name, Line: s.Line, Section: s.Ref()}
}

func (m *uciMapper) fail(e *UCIError, reason string) {
	e.Reason = reason
	m.errs = append(m.errs, e)
}

func (m *uciMapper) warn(e *UCIError, reason string) {
	e.Reason = reason
	m.warns = append(m.warns, e)
}

// unknown warns about the options of s not in known.
func (m *uciMapper) unknown(s *UCISection, known ...string) {
	for _, o := range s.Options {
		if !slices.Contains(known, o.Name) {
			m.warn(m.at(s, o, o.Values[0]), fmt.Sprintf("unknown option in a %s section, ignored", s.Type))
		}
	}
}

// one returns the option's value; a list of several values is an error.
func (m *uciMapper) one(s *UCISection, o *UCIOption) (UCIValue, bool) {
	if len(o.Values) != 1 {
		m.fail(m.at(s, o, o.Values[len(o.Values)-1]), fmt.Sprintf("takes one value, not a list of %d", len(o.Values)))
		return UCIValue{}, false
	}
	return o.Values[0], true
}

// flag sets a flag from the option's value, converted by conv.
func (m *uciMapper) flag(s *UCISection, o *UCIOption, name string, conv func(string) string) bool {
	v, ok := m.one(s, o)
	if !ok {
		m.src.bad[name] = true
		return false
	}
	text := v.Text
	if conv != nil {
		text = conv(text)
	}
	if err := m.fs.Set(name, text); err != nil {
		m.src.bad[name] = true
		m.fail(m.at(s, o, v), err.Error())
		return false
	}
	m.src.origins[name] = m.at(s, o, v)
	return true
}

// boolean reads a UCI boolean.
func (m *uciMapper) boolean(s *UCISection, o *UCIOption) (bool, bool) {
	v, ok := m.one(s, o)
	if !ok {
		return false, false
	}
	b, err := parseUCIBool(v.Text)
	if err != nil {
		m.fail(m.at(s, o, v), err.Error())
		return false, false
	}
	return b, true
}

// parseUCIBool reads the booleans UCI files use.
func parseUCIBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "1", "yes", "on", "true", "enabled":
		return true, nil
	case "0", "no", "off", "false", "disabled":
		return false, nil
	}
	return false, errors.New("want a boolean: 1/0, yes/no, on/off, true/false")
}

// uciDuration lets a duration be given in whole seconds, as UCI files do.
func uciDuration(s string) string {
	if _, err := strconv.ParseUint(s, 10, 64); err == nil {
		return s + "s"
	}
	return s
}

// uciSeconds lets a flag taking whole seconds be given a duration as well.
func uciSeconds(s string) string {
	// Decimal, also with leading zeros: -B would read "010" as C octal.
	if n, err := strconv.ParseUint(s, 10, 64); err == nil {
		return strconv.FormatUint(n, 10)
	}
	if d, err := time.ParseDuration(s); err == nil && d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10)
	}
	return s
}

// splitList splits a list value on blanks and commas: UCI lists are also
// written as one option with blank-separated values.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || r == ',' })
}

// main applies a ddhcpd section.
func (m *uciMapper) main(s *UCISection) {
	if m.settings != nil {
		m.warn(m.sectionAt(s), fmt.Sprintf("a second ddhcpd section (the first is %s on line %d); its settings win", m.settings.Ref(), m.settings.Line))
	} else {
		m.settings = s
	}
	var skipLearning, noSync bool
	for _, o := range s.Options {
		switch uciCanonical(o.Name) {
		case "enabled": // the init script's
			m.boolean(s, o)
		case "mesh_interface":
			m.interfaces(s, o, "i")
		case "client_interface":
			m.interfaces(s, o, "c")
		case "pool":
			m.flag(s, o, "N", nil)
		case "block_size_exp":
			m.flag(s, o, "b", nil)
		case "spare_leases":
			m.flag(s, o, "s", nil)
		case "block_timeout":
			m.flag(s, o, "B", uciSeconds)
		case "tentative_timeout":
			m.flag(s, o, "t", uciSeconds)
		case "needless_timeout":
			m.flag(s, o, "n", uciSeconds)
		case "learning":
			m.flag(s, o, "learning", uciDuration)
		case "skip_learning":
			skipLearning, _ = m.boolean(s, o)
		case "fast_join":
			if b, ok := m.boolean(s, o); ok {
				noSync = !b
			}
		case "sync_quiet":
			m.flag(s, o, "sync-quiet", uciDuration)
		case "inquire_interval":
			m.flag(s, o, "inquire-interval", uciDuration)
		case "max_blocks":
			m.flag(s, o, "max-blocks", nil)
		case "admit_rate":
			m.flag(s, o, "admit-rate", nil)
		case "no_dhcp":
			if b, ok := m.boolean(s, o); ok {
				m.c.NoDHCP = b
			}
		case "server_id":
			if m.flag(s, o, "server-id", nil) {
				m.serverID = m.src.origins["server-id"]
			}
		case "lease_time":
			if m.flag(s, o, "lease-time", uciDuration) {
				m.leaseTime = m.src.origins["lease-time"]
			}
		case "probation":
			m.flag(s, o, "probation", uciDuration)
		case "reserve":
			for _, v := range o.Values {
				if err := m.fs.Set("reserve", v.Text); err != nil {
					m.src.bad["reserve"] = true
					m.fail(m.at(s, o, v), err.Error())
				}
			}
		case "hook":
			m.flag(s, o, "H", nil)
		case "control_socket":
			m.flag(s, o, "C", nil)
		case "state_dir":
			m.flag(s, o, "state", nil)
		case "state_interval":
			m.flag(s, o, "state-interval", uciDuration)
		case "persist":
			m.flag(s, o, "persist", nil)
		case "persist_interval":
			m.flag(s, o, "persist-every", uciDuration)
		case "node_id_file":
			m.flag(s, o, "node-id-file", nil)
		case "log_level":
			if v, ok := m.one(s, o); ok {
				if l, err := parseLogLevel(v.Text); err != nil {
					m.fail(m.at(s, o, v), err.Error())
				} else {
					m.c.LogLevel = l
				}
			}
		case "overlay":
			if b, ok := m.boolean(s, o); ok {
				m.c.Overlay = b
			}
		case "leasefile":
			m.flag(s, o, "leasefile", nil)
		default:
			m.warn(m.at(s, o, o.Values[0]), "unknown option in the ddhcpd section, ignored")
		}
	}
	// These win over learning and sync_quiet wherever they stand.
	if skipLearning {
		m.c.LearningTime = 0
	}
	if noSync {
		m.c.SyncQuiet = 0
	}
}

// interfaces sets the mesh (flag "i") or client (flag "c") interfaces.
func (m *uciMapper) interfaces(s *UCISection, o *UCIOption, name string) {
	for _, v := range o.Values {
		for _, f := range splitList(v.Text) {
			if err := m.fs.Set(name, f); err != nil {
				m.fail(m.at(s, o, v), err.Error())
				continue
			}
			m.src.origins[name+"\x00"+f] = m.at(s, o, v)
			m.src.origins[name] = m.at(s, o, v)
		}
	}
}

// parseLogLevel reads a log level name.
func parseLogLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "error":
		return slog.LevelError, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "info":
		return slog.LevelInfo, nil
	case "debug":
		return slog.LevelDebug, nil
	}
	return 0, errors.New("want error, warn, info or debug")
}

// optionName is a DHCP option a UCI file may name instead of giving its code.
type optionName struct {
	name string
	code uint8
	typ  string // the type of its value, for EncodeOptionValue
}

// optionNames are the names of the common DHCP options (RFC 2132 and later).
func optionNames() []optionName {
	return []optionName{
		{"netmask", 1, "ip"}, {"subnet_mask", 1, "ip"},
		{"router", 3, "ips"}, {"gateway", 3, "ips"},
		{"time_server", 4, "ips"},
		{"dns", 6, "ips"}, {"dns_server", 6, "ips"},
		{"log_server", 7, "ips"},
		{"hostname", 12, "string"},
		{"domain", 15, "string"}, {"domain_name", 15, "string"},
		{"ip_forwarding", 19, "bool"},
		{"default_ttl", 23, "u8"},
		{"mtu", 26, "u16"},
		{"broadcast", 28, "ip"},
		{"nis_domain", 40, "string"},
		{"nis_server", 41, "ips"},
		{"ntp", 42, "ips"}, {"ntp_server", 42, "ips"},
		{"wins", 44, "ips"}, {"netbios_name_server", 44, "ips"},
		{"lease_time", 51, "u32"},
		{"server_id", 54, "ip"},
		{"tftp_server", 66, "string"},
		{"bootfile", 67, "string"},
		{"captive_portal", 114, "string"},
	}
}

// parseOptionCode reads an option code, as a number or a name, and returns
// the type of its value when it is known.
func parseOptionCode(s string) (uint8, string, error) {
	names := optionNames()
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > 254 {
			return 0, "", errors.New("option code must be 1..254")
		}
		for _, o := range names {
			if o.code == uint8(n) {
				return o.code, o.typ, nil
			}
		}
		return uint8(n), "", nil
	}
	for _, o := range names {
		if strings.EqualFold(o.name, s) {
			return o.code, o.typ, nil
		}
	}
	var known []string
	for _, o := range names {
		known = append(known, o.name)
	}
	return 0, "", fmt.Errorf("want a code 1..254 or a name: %s", strings.Join(known, ", "))
}

// validOptionType says whether t is one of EncodeOptionValue's types.
func validOptionType(t string) bool {
	switch t {
	case "ip", "ips", "u8", "u16", "u32", "string", "hex", "bool":
		return true
	}
	return false
}

// typedOption applies a "config option" section.
func (m *uciMapper) typedOption(s *UCISection) {
	m.unknown(s, "code", "type", "value", "always")
	co, vo := s.Option("code"), s.Option("value")
	if co == nil || vo == nil {
		m.fail(m.sectionAt(s), "an option section needs a code and a value")
		return
	}
	cv, ok := m.one(s, co)
	if !ok {
		return
	}
	code, typ, err := parseOptionCode(cv.Text)
	if err != nil {
		m.fail(m.at(s, co, cv), err.Error())
		return
	}
	if to := s.Option("type"); to != nil {
		tv, ok := m.one(s, to)
		if !ok {
			return
		}
		if typ = tv.Text; !validOptionType(typ) {
			m.fail(m.at(s, to, tv), "unknown type: want ip, ips, u8, u16, u32, string, hex or bool")
			return
		}
	}
	if typ == "" {
		m.fail(m.at(s, co, cv), "no type known for this code: add option type (ip, ips, u8, u16, u32, string, hex, bool)")
		return
	}
	var data []byte
	if typ == "ip" || typ == "ips" {
		// Addresses may come as a list, blank or comma separated.
		for _, v := range vo.Values {
			d, err := EncodeOptionValue(typ, strings.Join(splitList(v.Text), ","))
			if err != nil {
				m.fail(m.at(s, vo, v), err.Error())
				return
			}
			data = append(data, d...)
		}
		if len(data) > 255 {
			m.fail(m.at(s, vo, vo.Values[0]), fmt.Sprintf("%d addresses do not fit an option", len(data)/4))
			return
		}
	} else {
		v, ok := m.one(s, vo)
		if !ok {
			return
		}
		if data, err = EncodeOptionValue(typ, v.Text); err != nil {
			m.fail(m.at(s, vo, v), err.Error())
			return
		}
	}
	always := false
	if ao := s.Option("always"); ao != nil {
		if always, ok = m.boolean(s, ao); !ok {
			return
		}
	}
	m.addOption(m.at(s, co, cv), Option{Code: code, Data: data}, always)
}

// rawOption applies a "config dhcp_option" section of the gluon package:
// code, len and payload, as the C ddhcpd's -o CODE:LEN:PAYLOAD.
func (m *uciMapper) rawOption(s *UCISection) {
	m.unknown(s, "code", "len", "payload")
	co, lo, po := s.Option("code"), s.Option("len"), s.Option("payload")
	if co == nil {
		m.fail(m.sectionAt(s), "a dhcp_option section needs a code")
		return
	}
	cv, ok := m.one(s, co)
	if !ok {
		return
	}
	code, _, err := parseOptionCode(cv.Text)
	if err != nil {
		m.fail(m.at(s, co, cv), err.Error())
		return
	}
	var payload UCIValue
	if po != nil {
		if payload, ok = m.one(s, po); !ok {
			return
		}
	}
	given := 0 // the bytes in the payload
	if payload.Text != "" {
		given = strings.Count(payload.Text, ".") + 1
	}
	n := given
	if lo != nil {
		lv, ok := m.one(s, lo)
		if !ok {
			return
		}
		if n, err = strconv.Atoi(lv.Text); err != nil || n < 0 || n > 255 {
			m.fail(m.at(s, lo, lv), "option length must be 0..255")
			return
		}
		if po == nil && n > 0 {
			m.fail(m.sectionAt(s), "a dhcp_option section needs a payload")
			return
		}
	}
	o, err := ParseOption(fmt.Sprintf("%d:%d:%s", code, n, payload.Text))
	if err != nil {
		// A payload that is fine by itself has the wrong length.
		if _, perr := ParseOption(fmt.Sprintf("%d:%d:%s", code, given, payload.Text)); perr == nil && lo != nil {
			m.fail(m.at(s, lo, lo.Values[0]), err.Error())
		} else {
			m.fail(m.at(s, po, payload), err.Error())
		}
		return
	}
	m.addOption(m.at(s, co, cv), o, false)
}

// addOption adds an option from the file. Option 51 sets the lease time and
// 54 the server identifier, as in the C ddhcpd.
func (m *uciMapper) addOption(at *UCIError, o Option, always bool) {
	switch o.Code {
	case 51:
		if len(o.Data) != 4 {
			m.fail(at, fmt.Sprintf("the lease time (option 51) takes 4 bytes, not %d", len(o.Data)))
			return
		}
		d := time.Duration(binary.BigEndian.Uint32(o.Data)) * time.Second
		if d < 10*time.Second {
			m.fail(at, fmt.Sprintf("lease time %v: want at least 10s", d))
			return
		}
		m.option51, m.lease51 = at, d
		return
	case 54:
		if len(o.Data) != 4 || netip.AddrFrom4([4]byte(o.Data)).IsUnspecified() {
			m.fail(at, "the server identifier (option 54) takes an IPv4 address")
			return
		}
		m.option54, m.server54 = at, netip.AddrFrom4([4]byte(o.Data))
		return
	case 50, 53, 58, 59, 61, 82:
		m.warn(at, fmt.Sprintf("option %d is set by the server itself, ignored", o.Code))
		return
	}
	if line, ok := m.optionLine[o.Code]; ok {
		m.warn(at, fmt.Sprintf("option %d is also set on line %d; this one wins", o.Code, line))
		m.c.Options = slices.DeleteFunc(m.c.Options, func(x Option) bool { return x.Code == o.Code })
	}
	m.optionLine[o.Code] = at.Line
	m.c.Options = append(m.c.Options, o)
	if always && !slices.Contains(m.c.Always, o.Code) {
		m.c.Always = append(m.c.Always, o.Code)
	}
}

// host applies a "config host" section.
func (m *uciMapper) host(s *UCISection) {
	m.unknown(s, "mac", "client_id", "ip", "name")
	mo, io, ipo := s.Option("mac"), s.Option("client_id"), s.Option("ip")
	switch {
	case ipo == nil:
		m.fail(m.sectionAt(s), "a host section needs an ip")
		return
	case mo == nil && io == nil:
		m.fail(m.sectionAt(s), "a host section needs a mac or a client_id")
		return
	case mo != nil && io != nil:
		m.fail(m.at(s, io, io.Values[0]), "give mac or client_id, not both")
		return
	}
	var h Host
	if mo != nil {
		v, ok := m.one(s, mo)
		if !ok {
			return
		}
		mac, err := net.ParseMAC(v.Text)
		if err != nil {
			m.fail(m.at(s, mo, v), "not a MAC address")
			return
		}
		h.MAC = mac
	} else {
		v, ok := m.one(s, io)
		if !ok {
			return
		}
		id, err := hex.DecodeString(strings.ReplaceAll(v.Text, ":", ""))
		if err != nil || len(id) == 0 {
			m.fail(m.at(s, io, v), "want the client identifier in hexadecimal, like 01aabbccddeeff")
			return
		}
		h.ClientID = id
	}
	v, ok := m.one(s, ipo)
	if !ok {
		return
	}
	a, err := netip.ParseAddr(v.Text)
	if err != nil || !a.Is4() {
		m.fail(m.at(s, ipo, v), "want an IPv4 address")
		return
	}
	h.Addr = a
	m.c.Hosts = append(m.c.Hosts, h)
	m.src.origins["host\x00"+a.String()] = m.at(s, ipo, v)
}

// finish settles the lease time and server identifier: the ddhcpd section's
// lease_time and server_id win over options 51 and 54.
func (m *uciMapper) finish() {
	if m.option51 != nil {
		if m.leaseTime == nil {
			m.c.LeaseTime = m.lease51
			m.src.origins["lease-time"] = m.option51
		} else if m.c.LeaseTime != m.lease51 {
			m.warn(m.option51, fmt.Sprintf("lease time %v differs from lease_time %v on line %d, which wins", m.lease51, m.c.LeaseTime, m.leaseTime.Line))
		}
	}
	if m.option54 != nil {
		if m.serverID == nil {
			m.c.ServerID = m.server54
			m.src.origins["server-id"] = m.option54
		} else if m.c.ServerID != m.server54 {
			m.warn(m.option54, fmt.Sprintf("server identifier %v differs from server_id %v on line %d, which wins", m.server54, m.c.ServerID, m.serverID.Line))
		}
	}
}

// RestartError lists the settings that changed in the file but take effect
// only when the daemon restarts.
type RestartError struct {
	File     string
	Settings []string // UCI option names
}

func (e *RestartError) Error() string {
	return fmt.Sprintf("%s: changed but need a restart: %s", e.File, strings.Join(e.Settings, ", "))
}

// Reload reads the UCI file again (for SIGHUP), applies the original
// command line on top, and returns old with the settings that can change at
// run time replaced: the DHCP options (Options, Always), the lease time and
// the log level, and the file's new Warnings. The error is a *RestartError
// when other settings changed too (they stay as they were). When the file is
// invalid Reload returns old unchanged and the errors.
func Reload(path string, old Config) (Config, error) {
	return reload(path, old, ReadUCI)
}

// reload is Reload; read reads the file.
func reload(path string, old Config, read func(string) (*UCIFile, error)) (Config, error) {
	if path == "" {
		return old, errors.New("no UCI file (-uci) to reload")
	}
	nc, err := parse(old.args, path, read)
	if err != nil && err != ErrCheckConfig {
		return old, err
	}
	out := old
	out.Options = nc.Options
	out.Always = nc.Always
	out.LeaseTime = nc.LeaseTime
	out.LogLevel = nc.LogLevel
	out.Warnings = nc.Warnings
	if changed := restartNeeded(old, nc); len(changed) > 0 {
		return out, &RestartError{File: path, Settings: changed}
	}
	return out, nil
}

// restartNeeded names the settings, other than those Reload replaces, in
// which old and nc differ.
func restartNeeded(old, nc Config) []string {
	var out []string
	ov, nv := reflect.ValueOf(old), reflect.ValueOf(nc)
	t := ov.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		switch {
		case !f.IsExported():
			continue
		case slices.Contains([]string{"Options", "Always", "LeaseTime", "LogLevel", "Warnings", "UCIFile", "CheckConfig"}, f.Name):
			continue
		}
		if !reflect.DeepEqual(ov.Field(i).Interface(), nv.Field(i).Interface()) {
			out = append(out, uciFieldName(f.Name))
		}
	}
	return out
}

// uciFieldName is the UCI option name of a Config field.
func uciFieldName(field string) string {
	switch field {
	case "MeshInterfaces":
		return "mesh_interface"
	case "ClientInterfaces":
		return "client_interface"
	case "Pool":
		return "pool"
	case "SizeExp":
		return "block_size_exp"
	case "Reserved":
		return "reserve"
	case "NoDHCP":
		return "no_dhcp"
	case "SpareLeases":
		return "spare_leases"
	case "BlockTimeout":
		return "block_timeout"
	case "TentativeTimeout":
		return "tentative_timeout"
	case "NeedlessTimeout":
		return "needless_timeout"
	case "InquireInterval":
		return "inquire_interval"
	case "LearningTime":
		return "learning"
	case "SyncQuiet":
		return "sync_quiet"
	case "MaxBlocks":
		return "max_blocks"
	case "ServerID":
		return "server_id"
	case "Probation":
		return "probation"
	case "Hosts":
		return "host sections"
	case "Hook":
		return "hook"
	case "ControlSocket":
		return "control_socket"
	case "StateDir":
		return "state_dir"
	case "StateInterval":
		return "state_interval"
	case "Persist":
		return "persist"
	case "PersistEvery":
		return "persist_interval"
	case "NodeIDFile":
		return "node_id_file"
	case "Overlay":
		return "overlay"
	case "LeaseFile":
		return "leasefile"
	}
	return field
}
