package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// dumpUCI shows a parsed file compactly: a line per section (type, name,
// line) and per option (kind, name, then each value and its line).
func dumpUCI(f *UCIFile) string {
	var b strings.Builder
	for _, s := range f.Sections {
		fmt.Fprintf(&b, "%s %s %d\n", s.Type, s.Ref(), s.Line)
		for _, o := range s.Options {
			kind := "option"
			if o.List {
				kind = "list"
			}
			fmt.Fprintf(&b, " %s %s", kind, o.Name)
			for _, v := range o.Values {
				fmt.Fprintf(&b, " %s %d", quoteUCI(v.Text), v.Line)
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

func TestParseUCI(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"basic", "config ddhcpd 'settings'\n\toption pool '10.0.0.0/8'\n\tlist mesh_interface bat0\n\tlist mesh_interface \"mesh 1\"\n",
			"ddhcpd settings 1\n option pool '10.0.0.0/8' 2\n list mesh_interface 'bat0' 3 'mesh 1' 4\n"},
		{"single quotes", "config t\noption a 'it'\\''s'\noption b 'a\\b'\n",
			"t @t[0] 1\n option a 'it'\\''s' 2\n option b 'a\\b' 3\n"},
		{"double quotes", "config t\noption a \"say \\\"hi\\\" \\\\ \\t\"\noption b \"it's\"\n",
			"t @t[0] 1\n option a 'say \"hi\" \\ t' 2\n option b 'it'\\''s' 3\n"},
		{"joined pieces", "config t\noption a 'x'\"y\"z\\ w\n", "t @t[0] 1\n option a 'xyz w' 2\n"},
		{"comments", "# head\n\n  # indented\nconfig t # trailing\n\toption a b # c\n\toption c d#e\n\toption f '#g'\n",
			"t @t[0] 4\n option a 'b' 5\n option c 'd' 6\n option f '#g' 7\n"},
		{"blanks", "  config\tt  \t n \n\t \toption\t a\t'b c'  \n", "t n 1\n option a 'b c' 2\n"},
		{"crlf", "config t\r\n\toption a 'b'\r\n\toption c d\r\n", "t @t[0] 1\n option a 'b' 2\n option c 'd' 3\n"},
		{"abbreviated and ;", "c t n; o a b;l c d\nl c e\n", "t n 1\n option a 'b' 1\n list c 'd' 1 'e' 2\n"},
		{"multi-line quote", "config t\noption a 'one\ntwo'\noption b \"x\ny\"\noption c d\n",
			"t @t[0] 1\n option a 'one\\x0atwo' 2\n option b 'x\\x0ay' 4\n option c 'd' 6\n"},
		{"continued line", "config t\noption a long\\\nvalue\noption b c\n", "t @t[0] 1\n option a 'longvalue' 2\n option b 'c' 4\n"},
		{"named sections merge", "config t n\noption a 1\nconfig u\nconfig t n\noption b 2\noption a 3\n",
			"t n 1\n option a '3' 6\n option b '2' 5\nu @u[0] 3\n"},
		{"option becomes list", "config t\noption a 1\nlist a 2\n", "t @t[0] 1\n list a '1' 2 '2' 3\n"},
		{"list becomes option", "config t\nlist a 1\nlist a 2\noption a 3\n", "t @t[0] 1\n option a '3' 4\n"},
		{"empty value removes", "config t\noption a 1\noption a ''\noption b \"\"\noption c\n", "t @t[0] 1\n"},
		{"package", "package ddhcpd\n\nconfig t\n", "t @t[0] 3\n"},
		{"anonymous refs", "config t\nconfig t 'x'\nconfig t\nconfig u\n", "t @t[0] 1\nt x 2\nt @t[2] 3\nu @u[0] 4\n"},
		{"no final newline", "config t\noption a b", "t @t[0] 1\n option a 'b' 2\n"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ParseUCI("x", []byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if got := dumpUCI(f); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestParseUCIErrors(t *testing.T) {
	tests := []struct {
		in     string
		errors []string // "LINE: reason substring"
		after  string   // what was parsed anyway
	}{
		{"option a b\n", []string{"1: option a 'b': option before the first config section"}, ""},
		{"config t\nfoo bar\noption a b\n", []string{"2: unknown statement 'foo'"}, "t @t[0] 1\n option a 'b' 3\n"},
		{"config t\noption a 'b\n\n", []string{"2: ' quote not closed"}, "t @t[0] 1\n"},
		{"config t\noption a \"b\\\"\n", []string{`2: " quote not closed`}, "t @t[0] 1\n"},
		{"config t\noption a-b c\n", []string{"2: option a-b 'c': option name: want letters, digits and _"}, "t @t[0] 1\n"},
		{"config t\noption a b c\n", []string{"2: option a 'b': too many arguments"}, "t @t[0] 1\n"},
		{"config t\noption\n", []string{"2: option without a name"}, "t @t[0] 1\n"},
		{"config\noption a b\n", []string{"1: config without a section type"}, ""},
		{"config 'a type'\n", []string{"1: section type 'a type'"}, ""},
		{"config t 'a b'\noption x y\n", []string{"1: section name 'a b'"}, ""},
		{"config t n x\n", []string{"1: too many arguments to config"}, ""},
		{"config t n\nconfig u n\noption a b\nconfig t n\noption c d\n", []string{"2: section n was declared with type 't' on line 1"}, "t n 1\n option c 'd' 5\n"},
		{"config t\noption a b\x00c\noption d e\n", []string{"2: NUL byte"}, "t @t[0] 1\n option d 'e' 3\n"},
		{"package\n", []string{"1: package without a name"}, ""},
		{"x\nconfig t\ny\noption a 'b\n", []string{"1: unknown statement 'x'", "3: unknown statement 'y'", "4: ' quote not closed"}, "t @t[0] 2\n"},
	}
	for _, tt := range tests {
		f, err := ParseUCI("f.uci", []byte(tt.in))
		errs := Errors(err)
		if len(errs) != len(tt.errors) {
			t.Errorf("%q: errors %v, want %d", tt.in, errs, len(tt.errors))
			continue
		}
		for i, e := range errs {
			var ue *UCIError
			if !errors.As(e, &ue) {
				t.Errorf("%q: %v is not a *UCIError", tt.in, e)
				continue
			}
			if want := "f.uci:" + tt.errors[i]; !strings.HasPrefix(e.Error(), want) {
				t.Errorf("%q: error %q, want %q...", tt.in, e, want)
			}
		}
		if got := dumpUCI(f); got != tt.after {
			t.Errorf("%q: parsed\n%s\nwant\n%s", tt.in, got, tt.after)
		}
	}
}

func TestUCIErrorString(t *testing.T) {
	tests := []struct {
		e    UCIError
		want string
	}{
		{UCIError{File: "/etc/config/ddhcpd", Line: 7, Section: "settings", Option: "pool", Value: "10.0.0.0/33", Reason: "bad"},
			"/etc/config/ddhcpd:7: option pool '10.0.0.0/33': bad"},
		{UCIError{File: "f", Line: 1, Option: "name", Value: "it's\n", Reason: "bad"}, `f:1: option name 'it'\''s\x0a': bad`},
		{UCIError{File: "f", Line: 3, Section: "@host[0]", Reason: "needs an ip"}, "f:3: section @host[0]: needs an ip"},
		{UCIError{File: "f", Line: 3, Reason: "unknown statement"}, "f:3: unknown statement"},
		{UCIError{File: "f", Reason: "too large"}, "f: too large"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
	if got := quoteUCI(strings.Repeat("a", 300)); len(got) != 205 || !strings.HasSuffix(got, "...'") {
		t.Errorf("long value shown as %q", got)
	}
}

// writeUCI writes a UCI file into a temporary directory.
func writeUCI(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ddhcpd")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestUCIFull(t *testing.T) {
	c, err := Parse([]string{"-uci", "testdata/full.uci"})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) > 0 {
		t.Errorf("warnings: %v", c.Warnings)
	}
	checks := []struct {
		name string
		ok   bool
	}{
		{"mesh_interface", slices.Equal(c.MeshInterfaces, []string{"bat0", "mesh1"})},
		{"client_interface", slices.Equal(c.ClientInterfaces, []string{"br-client"})},
		{"pool", c.Pool == netip.MustParsePrefix("10.116.224.0/20")},
		{"block_size_exp", c.SizeExp == 3},
		{"spare_leases", c.SpareLeases == 4},
		{"block_timeout", c.BlockTimeout == 90*time.Second},
		{"tentative_timeout", c.TentativeTimeout == 20*time.Second},
		{"needless_timeout", c.NeedlessTimeout == 600*time.Second},
		{"learning", c.LearningTime == 45*time.Second},
		{"sync_quiet", c.SyncQuiet == 3*time.Second},
		{"inquire_interval", c.InquireInterval == 2*time.Second},
		{"max_blocks", c.MaxBlocks == 16},
		{"no_dhcp", !c.NoDHCP},
		{"server_id", c.ServerID == netip.MustParseAddr("10.116.254.254")},
		{"lease_time", c.LeaseTime == 600*time.Second},
		{"probation", c.Probation == 1800*time.Second},
		{"reserve", len(c.Reserved) == 2 && c.Reserved[1].Last == netip.MustParseAddr("10.116.230.9")},
		{"hook", c.Hook == "/usr/lib/ddhcpd/hook"},
		{"control_socket", c.ControlSocket == "/var/run/ddhcpd-test.sock"},
		{"state_dir", c.StateDir == "/tmp/ddhcpd-test"},
		{"state_interval", c.StateInterval == 5*time.Second},
		{"persist", c.Persist == "/etc/ddhcpd/state.json"},
		{"persist_interval", c.PersistEvery == 900*time.Second},
		{"log_level", c.LogLevel == slog.LevelDebug},
		{"overlay", c.Overlay},
		{"leasefile", c.LeaseFile == "/tmp/ddhcpd.leases"},
		{"always", slices.Equal(c.Always, []uint8{3, 252})},
		{"uci file", c.UCIFile == "testdata/full.uci"},
	}
	for _, ch := range checks {
		if !ch.ok {
			t.Errorf("%s not applied: %+v", ch.name, c)
		}
	}
	wantOptions := []Option{
		{3, []byte{10, 116, 254, 254}},
		{6, []byte{10, 116, 254, 254, 10, 116, 254, 253, 10, 116, 254, 252}},
		{15, []byte("ffmesh")},
		{26, []byte{5, 0}},
		{252, []byte{10, 0}},
	}
	if !slices.EqualFunc(c.Options, wantOptions, func(a, b Option) bool { return a.Code == b.Code && string(a.Data) == string(b.Data) }) {
		t.Errorf("options %v, want %v", c.Options, wantOptions)
	}
	if len(c.Hosts) != 2 || c.Hosts[0].MAC.String() != "02:00:00:00:00:01" || c.Hosts[0].Addr.String() != "10.116.224.10" ||
		string(c.Hosts[1].ClientID) != "\x01\xaa\xbb\xcc" || c.Hosts[1].Addr.String() != "10.116.224.11" {
		t.Errorf("hosts %+v", c.Hosts)
	}
}

func TestUCIBooleans(t *testing.T) {
	c, err := Parse([]string{"-uci", writeUCI(t, "config ddhcpd\n\toption skip_learning on\n\toption learning 30\n\toption fast_join no\n\toption no_dhcp true\n")})
	if err != nil {
		t.Fatal(err)
	}
	// skip_learning and fast_join win over learning and sync_quiet; no_dhcp
	// keeps no spare leases, as -S does.
	if c.LearningTime != 0 || c.SyncQuiet != 0 || !c.NoDHCP || c.SpareLeases != 0 {
		t.Errorf("%+v", c)
	}
	c, err = Parse([]string{"-uci", writeUCI(t, "config ddhcpd\n\toption block_timeout 2m\n\toption tentative_timeout '5'\n\toption lease_time 1h\n\toption max_blocks -1\n")})
	if err != nil || c.BlockTimeout != 2*time.Minute || c.LearningTime != 2*time.Minute || c.TentativeTimeout != 5*time.Second || c.LeaseTime != time.Hour || c.MaxBlocks != -1 {
		t.Errorf("%+v %v", c, err)
	}
}

func TestUCIGluon(t *testing.T) {
	c, err := Parse([]string{"-uci", "testdata/gluon.uci"})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) > 0 {
		t.Errorf("warnings: %v", c.Warnings)
	}
	if c.Pool.String() != "10.187.124.0/22" || c.SizeExp != 2 || c.BlockTimeout != 300*time.Second ||
		c.SpareLeases != 2 || c.TentativeTimeout != 15*time.Second || c.LeaseTime != 300*time.Second ||
		!slices.Equal(c.ClientInterfaces, []string{"local-node"}) || !slices.Equal(c.MeshInterfaces, []string{"mmfd0"}) ||
		c.ServerID.String() != "10.187.127.254" {
		t.Errorf("%+v", c)
	}
	// 51 became the lease time and 54 the server identifier.
	var codes []uint8
	for _, o := range c.Options {
		codes = append(codes, o.Code)
	}
	if !slices.Equal(codes, []uint8{1, 3, 6}) || string(c.Options[0].Data) != "\xff\xff\xfc\x00" {
		t.Errorf("options %v", c.Options)
	}

	// The package's own file: interfaces default to br-client as its init
	// script does, the lease time comes from option 51.
	c, err = Parse([]string{"-uci", "testdata/gluon-shipped.uci"})
	if err != nil || len(c.Warnings) > 0 {
		t.Fatal(err, c.Warnings)
	}
	if !slices.Equal(c.MeshInterfaces, []string{"br-client"}) || !slices.Equal(c.ClientInterfaces, []string{"br-client"}) ||
		c.LeaseTime != 300*time.Second || len(c.Options) != 0 {
		t.Errorf("%+v", c)
	}

	// spare_blocks is taken as spare_leases.
	c, err = Parse([]string{"-uci", writeUCI(t, "config ddhcpd 'settings'\n\toption spare_blocks '3'\n")})
	if err != nil || c.SpareLeases != 3 {
		t.Errorf("spare_blocks: %+v %v", c, err)
	}
}

// TestShippedConfig checks files/etc/config/ddhcpd: it is valid without
// warnings, and so is every commented-out example in it.
func TestShippedConfig(t *testing.T) {
	const path = "../../files/etc/config/ddhcpd"
	c, err := Parse([]string{"-uci", path, "-check-config"})
	if err != ErrCheckConfig {
		t.Fatal(err)
	}
	if len(c.Warnings) > 0 {
		t.Errorf("warnings: %v", c.Warnings)
	}
	if c.Pool.String() != "10.116.224.0/20" || c.SizeExp != 2 || !slices.Equal(c.MeshInterfaces, []string{"bat0"}) ||
		c.LeaseTime != 300*time.Second || c.LogLevel != slog.LevelWarn || c.PersistEvery != 10*time.Minute {
		t.Errorf("%+v", c)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Uncomment the examples: "#config ...", "#\toption ...", "#\tlist ..."
	// and, in the settings, "\t#option ..." ("#\t#option" stays a comment).
	text := regexp.MustCompile(`(?m)^#(config |\toption |\tlist )`).ReplaceAllString(string(data), "$1")
	text = regexp.MustCompile(`(?m)^\t#(option |list )`).ReplaceAllString(text, "\t$1")
	if text == string(data) {
		t.Fatal("no commented-out examples found")
	}
	c, err = Parse([]string{"-uci", writeUCI(t, text), "-check-config"})
	if err != ErrCheckConfig {
		t.Fatal(err)
	}
	if len(c.Warnings) > 0 {
		t.Errorf("examples: warnings: %v", c.Warnings)
	}
	if len(c.Options) != 3 || len(c.Hosts) != 1 || len(c.Reserved) != 1 || c.Persist == "" || c.Hook == "" || !c.ServerID.IsValid() {
		t.Errorf("examples not all applied: %+v", c)
	}
}

func TestUCIOptions(t *testing.T) {
	tests := []struct {
		section string
		code    uint8
		data    string
		always  bool
		err     string // "LINE: option NAME 'VALUE': reason" substring when it is wrong
	}{
		{"config option\n\toption code router\n\toption value 10.0.0.1\n", 3, "\x0a\x00\x00\x01", false, ""},
		{"config option\n\toption code ROUTER\n\tlist value 10.0.0.1\n\tlist value '10.0.0.2,10.0.0.3'\n", 3, "\x0a\x00\x00\x01\x0a\x00\x00\x02\x0a\x00\x00\x03", false, ""},
		{"config option\n\toption code 6\n\toption value '10.0.0.1 10.0.0.2'\n\toption always 1\n", 6, "\x0a\x00\x00\x01\x0a\x00\x00\x02", true, ""},
		{"config option\n\toption code mtu\n\toption value 1400\n", 26, "\x05\x78", false, ""},
		{"config option\n\toption code 23\n\toption type u8\n\toption value 64\n", 23, "\x40", false, ""},
		{"config option\n\toption code 200\n\toption type u32\n\toption value 7\n", 200, "\x00\x00\x00\x07", false, ""},
		{"config option\n\toption code 19\n\toption value off\n", 19, "\x00", false, ""},
		{"config option\n\toption code domain\n\toption value 'my mesh'\n", 15, "my mesh", false, ""},
		{"config option\n\toption code 15\n\toption type hex\n\toption value '61 62'\n", 15, "ab", false, ""},
		{"config option\n\toption code 200\n\toption value x\n", 0, "", false, "2: option code '200': no type known"},
		{"config option\n\toption code 0\n\toption type u8\n\toption value 1\n", 0, "", false, "2: option code '0': option code must be 1..254"},
		{"config option\n\toption code nonsense\n\toption value 1\n", 0, "", false, "2: option code 'nonsense': want a code 1..254 or a name"},
		{"config option\n\toption code 6\n\toption type ipv4\n\toption value 10.0.0.1\n", 0, "", false, "3: option type 'ipv4': unknown type"},
		{"config option\n\toption code 6\n\tlist value 10.0.0.1\n\tlist value 10.0.0\n", 0, "", false, `4: option value '10.0.0': "10.0.0" is not an IPv4 address`},
		{"config option\n\toption code 26\n\toption value 70000\n", 0, "", false, "3: option value '70000'"},
		{"config option\n\toption code 15\n\tlist value a\n\tlist value b\n", 0, "", false, "4: option value 'b': takes one value, not a list of 2"},
		{"config option\n\toption code 15\n\toption value a\n\toption always sometimes\n", 0, "", false, "4: option always 'sometimes': want a boolean"},
		{"config option 'x'\n\toption code 15\n", 0, "", false, "1: section x: an option section needs a code and a value"},
		{"config dhcp_option\n\toption code 3\n\toption len 4\n\toption payload 10.0.0.1\n", 3, "\x0a\x00\x00\x01", false, ""},
		{"config dhcp_option\n\toption code 3\n\toption payload 10.0.0.1\n", 3, "\x0a\x00\x00\x01", false, ""},
		// The payload bytes in C's forms, as the gluon init script passed them to -o.
		{"config dhcp_option\n\toption code 3\n\toption len 4\n\toption payload 0x0a.0.00.0x1\n", 3, "\x0a\x00\x00\x01", false, ""},
		{"config dhcp_option\n\toption code 80\n\toption len 0\n", 80, "", false, ""},
		{"config dhcp_option\n\toption code 3\n\toption len 3\n\toption payload 10.0.0.1\n", 0, "", false, "3: option len '3': option length 3 but 4 bytes given"},
		{"config dhcp_option\n\toption code 3\n\toption len 4\n\toption payload 10.0.0.256\n", 0, "", false, `4: option payload '10.0.0.256': option byte "256" is not 0..255`},
		{"config dhcp_option\n\toption code 3\n\toption len 300\n\toption payload 1\n", 0, "", false, "3: option len '300': option length must be 0..255"},
		{"config dhcp_option\n\toption code 3\n\toption len 4\n", 0, "", false, "1: section @dhcp_option[0]: a dhcp_option section needs a payload"},
		{"config dhcp_option\n\toption code 255\n\toption payload 1\n", 0, "", false, "2: option code '255': option code must be 1..254"},
		{"config dhcp_option\n\toption code 51\n\toption len 4\n\toption payload 0.0.0.5\n", 0, "", false, "2: option code '51': lease time 5s: want at least 10s"},
		{"config dhcp_option\n\toption code 54\n\toption len 1\n\toption payload 7\n", 0, "", false, "2: option code '54': the server identifier (option 54) takes an IPv4 address"},
	}
	for _, tt := range tests {
		path := writeUCI(t, tt.section)
		c, err := Parse([]string{"-uci", path})
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), path+":"+tt.err) {
				t.Errorf("%q: error %v, want %q", tt.section, err, tt.err)
			}
			continue
		}
		if err != nil || len(c.Warnings) > 0 {
			t.Errorf("%q: %v %v", tt.section, err, c.Warnings)
			continue
		}
		if len(c.Options) != 1 || c.Options[0].Code != tt.code || string(c.Options[0].Data) != tt.data || slices.Contains(c.Always, tt.code) != tt.always {
			t.Errorf("%q: options %v always %v", tt.section, c.Options, c.Always)
		}
	}
}

func TestUCIHosts(t *testing.T) {
	const pool = "config ddhcpd\n\toption pool 10.0.0.0/24\n"
	tests := []struct {
		section string
		err     string
	}{
		{"config host\n\toption mac 02:00:00:00:00:09\n\toption ip 10.0.0.20\n\toption name x\n", ""},
		{"config host\n\toption client_id 01aa\n\toption ip 10.0.0.21\n", ""},
		{"config host\n\toption mac 02:00:00:00:00:09\n", "3: section @host[0]: a host section needs an ip"},
		{"config host\n\toption ip 10.0.0.20\n", "3: section @host[0]: a host section needs a mac or a client_id"},
		{"config host\n\toption mac 02:00:00:00:00:09\n\toption client_id 01aa\n\toption ip 10.0.0.20\n", "5: option client_id '01aa': give mac or client_id, not both"},
		{"config host\n\toption client_id zz\n\toption ip 10.0.0.20\n", "4: option client_id 'zz': want the client identifier in hexadecimal"},
		{"config host\n\toption mac 02:00:00:00:00:09\n\toption ip 10.0.0\n", "5: option ip '10.0.0': want an IPv4 address"},
		{"config host\n\toption mac 02:00:00:00:00:09\n\toption ip 10.9.0.1\n", "5: option ip '10.9.0.1': not inside the pool 10.0.0.0/24"},
	}
	for _, tt := range tests {
		path := writeUCI(t, pool+tt.section)
		c, err := Parse([]string{"-uci", path})
		if tt.err == "" {
			if err != nil || len(c.Hosts) != 1 || len(c.Warnings) > 0 {
				t.Errorf("%q: %+v %v %v", tt.section, c.Hosts, err, c.Warnings)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), path+":"+tt.err) {
			t.Errorf("%q: error %v, want %q", tt.section, err, tt.err)
		}
	}
}

func TestUCIWarnings(t *testing.T) {
	path := writeUCI(t, `config ddhcpd 'settings'
	option colour 'blue'
	option lease_time '600'
	option server_id '10.0.0.1'

config dhcp_option
	option code '51'
	option payload '0.0.1.44'
	option comment 'x'

config dhcp_option
	option code '54'
	option payload '10.0.0.2'

config option
	option code '53'
	option type 'u8'
	option value '1'

config option
	option code 'router'
	option value '10.0.0.1'

config option
	option code '3'
	option value '10.0.0.2'

config frobnicator

config ddhcpd
	option pool '10.0.0.0/24'
`)
	c, err := Parse([]string{"-uci", path})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"2: option colour 'blue': unknown option in the ddhcpd section, ignored",
		"9: option comment 'x': unknown option in a dhcp_option section, ignored",
		"16: option code '53': option 53 is set by the server itself, ignored",
		"25: option code '3': option 3 is also set on line 21; this one wins",
		"28: section @frobnicator[0]: unknown section type 'frobnicator', ignored",
		"30: section @ddhcpd[1]: a second ddhcpd section (the first is settings on line 1); its settings win",
		"7: option code '51': lease time 5m0s differs from lease_time 10m0s on line 3, which wins",
		"12: option code '54': server identifier 10.0.0.2 differs from server_id 10.0.0.1 on line 4, which wins",
	}
	var got []string
	for _, w := range c.Warnings {
		got = append(got, strings.TrimPrefix(w.Error(), path+":"))
	}
	if !slices.Equal(got, want) {
		t.Errorf("warnings\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if c.LeaseTime != 600*time.Second || c.ServerID.String() != "10.0.0.1" || len(c.Options) != 1 || c.Options[0].Data[3] != 2 || c.Pool.Bits() != 24 {
		t.Errorf("%+v", c)
	}
}

func TestFlagsOverUCI(t *testing.T) {
	path := writeUCI(t, `config ddhcpd
	list mesh_interface 'bat0'
	list mesh_interface 'bat1'
	option pool '10.116.224.0/20'
	option block_size_exp '2'
	option lease_time '600'
	option log_level 'info'
	option hook '/usr/lib/ddhcpd/hook'
	list reserve '10.116.224.5'

config option
	option code 'router'
	option value '10.116.254.254'

config option
	option code 'dns'
	option value '10.116.254.254'
	option always '1'

config dhcp_option
	option code 51
	option payload 0.0.2.88
`)
	c, err := Parse([]string{"-uci", path, "-i", "mesh0", "-N", "10.0.0.0/16", "-v", "-option", "3:ip:10.0.0.1", "-reserve", "10.0.0.9", "-lease-time", "20m"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.MeshInterfaces, []string{"mesh0"}) || c.Pool.String() != "10.0.0.0/16" || c.SizeExp != 2 ||
		c.LogLevel != slog.LevelDebug || c.Hook != "/usr/lib/ddhcpd/hook" || len(c.Reserved) != 2 || c.LeaseTime != 20*time.Minute {
		t.Errorf("%+v", c)
	}
	// -option 3 replaced the file's router; its dns stays, sent always.
	if len(c.Options) != 2 || c.Options[0].Code != 6 || c.Options[1].Code != 3 || string(c.Options[1].Data) != "\x0a\x00\x00\x01" ||
		!slices.Equal(c.Always, []uint8{6}) {
		t.Errorf("options %v always %v", c.Options, c.Always)
	}
	// -o 51 on the command line wins over the file's lease time, as in the C ddhcpd.
	c, err = Parse([]string{"-uci", path, "-o", "51:4:0.0.0.60"})
	if err != nil || c.LeaseTime != time.Minute {
		t.Errorf("%v %v", c.LeaseTime, err)
	}
	// -uci as the flag package spells it too; the value of another flag is no -uci.
	for _, args := range [][]string{{"--uci", path}, {"-uci=" + path}, {"-L", "-uci", path}} {
		if c, err := Parse(args); err != nil || c.UCIFile != path || c.Pool.Bits() != 20 {
			t.Errorf("%q: %v %v", args, c.Pool, err)
		}
	}
	for _, args := range [][]string{{"-H", "-uci", path}, {"-S", "--", "-uci", path}} {
		if c, _ := Parse(args); c.UCIFile != "" {
			t.Errorf("%q read the file", args)
		}
	}
}

func TestCheckConfig(t *testing.T) {
	const path = "testdata/bad.uci"
	c, err := Parse([]string{"-uci", path, "-check-config"})
	if err == nil || errors.Is(err, ErrCheckConfig) || !c.CheckConfig {
		t.Fatalf("%v, check %v", err, c.CheckConfig)
	}
	want := []string{
		"testdata/bad.uci:2: option pool '10.116.224.0/33': want an IPv4 prefix like 10.116.224.0/20",
		"testdata/bad.uci:3: option block_size_exp '9': block size exponent must be 0..7 (at most 128 addresses fit the wire format)",
		"testdata/bad.uci:4: option block_timeout 'soon': want whole seconds 1..65535",
		"testdata/bad.uci:5: option lease_time '5': want a duration of at least 10s",
		"testdata/bad.uci:6: option log_level 'loud': want error, warn, info or debug",
		"testdata/bad.uci:7: option fast_join 'maybe': want a boolean: 1/0, yes/no, on/off, true/false",
		`testdata/bad.uci:13: option value '10.116.254': "10.116.254" is not an IPv4 address`,
		"testdata/bad.uci:16: option mac 'nonsense': not a MAC address",
		"testdata/bad.uci:8: option mesh_interface 'averyveryverylongname': not a valid interface name",
	}
	var got []string
	for _, e := range Errors(err) {
		var ue *UCIError
		if !errors.As(e, &ue) {
			t.Errorf("%v is not a *UCIError", e)
		}
		got = append(got, e.Error())
	}
	if !slices.Equal(got, want) {
		t.Errorf("errors\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(c.Warnings) != 1 || c.Warnings[0].Error() != "testdata/bad.uci:9: option colour 'blue': unknown option in the ddhcpd section, ignored" {
		t.Errorf("warnings %v", c.Warnings)
	}
	var ue *UCIError
	if errors.As(err, &ue) && (ue.File != path || ue.Line != 2 || ue.Section != "settings" || ue.Option != "pool" || ue.Value != "10.116.224.0/33") {
		t.Errorf("first error %+v", ue)
	}

	// Errors the file and the command line cause together; a flag's own
	// problem names the flag.
	good := writeUCI(t, "config ddhcpd\n\toption pool 10.0.0.0/26\n\toption block_size_exp 3\n\tlist client_interface 'a/b'\n")
	_, err = Parse([]string{"-uci", good, "-b", "7", "-check-config", "-c", "x/y"})
	got = nil
	for _, e := range Errors(err) {
		got = append(got, e.Error())
	}
	if len(got) != 2 || got[0] != `-c "x/y": not a valid interface name` || !strings.HasPrefix(got[1], good+":2: option pool '10.0.0.0/26': ") {
		t.Errorf("errors %q", got)
	}

	if _, err := Parse([]string{"-uci", filepath.Join(t.TempDir(), "none")}); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := Parse([]string{"-check-config", "-N", "10.1.0.0/16"}); err != ErrCheckConfig {
		t.Errorf("flags only: %v", err)
	}
	// A flag error after file errors: both are reported.
	if _, err := Parse([]string{"-uci", path, "-b", "x"}); len(Errors(err)) != 9 {
		t.Errorf("flag and file errors: %v", err)
	}
}

func TestReload(t *testing.T) {
	const v1 = `config ddhcpd
	option pool '10.116.224.0/20'
	option block_timeout '60'
	option lease_time '300'
	option log_level 'warn'

config option
	option code 'router'
	option value '10.116.254.254'

config host
	option mac '02:00:00:00:00:01'
	option ip '10.116.224.10'
`
	path := writeUCI(t, v1)
	old, err := Parse([]string{"-uci", path, "-S"})
	if err != nil {
		t.Fatal(err)
	}
	// Nothing changed.
	if c, err := Reload(path, old); err != nil || c.LeaseTime != old.LeaseTime || len(c.Options) != 1 {
		t.Errorf("unchanged: %v", err)
	}

	v2 := strings.NewReplacer("'300'", "'600'", "'warn'", "'info'", "'60'", "'90'", "/20", "/19", "10.116.224.10", "10.116.224.11").Replace(v1) +
		"\nconfig option\n\toption code dns\n\toption value 10.116.254.254\n\toption always 1\n\toption colour red\n"
	if err := os.WriteFile(path, []byte(v2), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Reload(path, old)
	var re *RestartError
	if !errors.As(err, &re) || !slices.Equal(re.Settings, []string{"pool", "block_timeout", "learning", "host sections"}) {
		t.Errorf("restart needed: %v", err)
	}
	if c.LeaseTime != 600*time.Second || c.LogLevel != slog.LevelInfo || len(c.Options) != 2 || !slices.Equal(c.Always, []uint8{6}) || len(c.Warnings) != 1 {
		t.Errorf("run-time settings not reloaded: %+v", c)
	}
	if c.Pool != old.Pool || c.BlockTimeout != old.BlockTimeout || c.Hosts[0].Addr != old.Hosts[0].Addr || !c.NoDHCP {
		t.Errorf("restart settings changed: %+v", c)
	}

	// The command line still wins.
	old2, err := Parse([]string{"-uci", path, "-lease-time", "20m"})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(v2, "'600'", "'900'", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := Reload(path, old2); err != nil || c.LeaseTime != 20*time.Minute {
		t.Errorf("flags on reload: %v %v", c.LeaseTime, err)
	}

	// An invalid file changes nothing.
	if err := os.WriteFile(path, []byte(strings.Replace(v2, "'600'", "'soon'", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = Reload(path, old)
	if err == nil || !strings.Contains(err.Error(), path+":4: option lease_time 'soon'") || c.LeaseTime != old.LeaseTime || len(c.Options) != 1 {
		t.Errorf("invalid file: %v %+v", err, c)
	}
	if _, err := Reload("", old); err == nil {
		t.Error("reload without a file")
	}
}

// TestUCILeaseFile: the lease file is an absolute path; a bad one names the
// file's line, the option and the value; the flag wins; and changing it needs
// a restart.
func TestUCILeaseFile(t *testing.T) {
	path := writeUCI(t, "config ddhcpd 'settings'\n\toption leasefile 'tmp/ddhcpd.leases'\n")
	_, err := Parse([]string{"-uci", path})
	if want := path + ":2: option leasefile 'tmp/ddhcpd.leases': want an absolute file path"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("relative path: %v, want %q", err, want)
	}
	path = writeUCI(t, "config ddhcpd 'settings'\n\toption leasefile '/tmp//ddhcpd.leases'\n")
	c, err := Parse([]string{"-uci", path})
	if err != nil || c.LeaseFile != "/tmp/ddhcpd.leases" {
		t.Errorf("leasefile %q, %v", c.LeaseFile, err)
	}
	if c, err := Parse([]string{"-uci", path, "-leasefile", ""}); err != nil || c.LeaseFile != "" {
		t.Errorf("-leasefile '' over the file: %q, %v", c.LeaseFile, err)
	}
	if err := os.WriteFile(path, []byte("config ddhcpd 'settings'\n\toption leasefile '/tmp/dhcp.leases'\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var re *RestartError
	if _, err := Reload(path, c); !errors.As(err, &re) || !slices.Equal(re.Settings, []string{"leasefile"}) {
		t.Errorf("reload with another lease file: %v", err)
	}
}

func TestScanFlags(t *testing.T) {
	tests := []struct {
		args []string
		uci  string
		ok   bool
	}{
		{[]string{"-uci", "a"}, "a", true},
		{[]string{"-uci", "a", "-uci=b"}, "b", true},
		{[]string{"-v", "-N", "10.0.0.0/8", "--uci", "a"}, "a", true},
		{[]string{"-H", "-uci", "a"}, "", false},
		{[]string{"x", "-uci", "a"}, "", false},
		{[]string{"-nonsense", "-uci", "a"}, "", false},
		{[]string{"-uci"}, "", false},
	}
	for _, tt := range tests {
		v := scanFlags(tt.args)["uci"]
		if (v != nil) != tt.ok || v != nil && *v != tt.uci {
			t.Errorf("%q: %v", tt.args, v)
		}
	}
}
