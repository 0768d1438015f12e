package config

import (
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDefaults(t *testing.T) {
	c, err := Parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Pool.String() != "10.0.0.0/24" || c.SizeExp != 5 || c.SpareLeases != 2 ||
		c.BlockTimeout != time.Minute || c.TentativeTimeout != 15*time.Second ||
		c.NeedlessTimeout != 300*time.Second || c.LearningTime != time.Minute ||
		!slices.Equal(c.MeshInterfaces, []string{"server0"}) || !slices.Equal(c.ClientInterfaces, []string{"client0"}) ||
		c.LogLevel != slog.LevelWarn || c.LeaseFile != "" {
		t.Errorf("defaults: %+v", c)
	}
}

func TestCFlags(t *testing.T) {
	// The reference deployment's command line from the C README.
	args := strings.Fields(`-o 3:4:10.116.254.254 -o 1:4:255.255.128.0 -o 28:4:10.116.254.255 -N 10.116.224.0/20 -b 2 -s 1 -c br-client -i bat0 -B 30 -t 4 -n 120 -Lvv -H /usr/lib/ddhcpd/hook -C /tmp/ctl -state /tmp/st`)
	c, err := Parse(args)
	if err != nil {
		t.Fatal(err)
	}
	if c.Pool.String() != "10.116.224.0/20" || c.SizeExp != 2 || c.SpareLeases != 1 ||
		!slices.Equal(c.MeshInterfaces, []string{"bat0"}) || !slices.Equal(c.ClientInterfaces, []string{"br-client"}) ||
		c.BlockTimeout != 30*time.Second || c.TentativeTimeout != 4*time.Second || c.NeedlessTimeout != 120*time.Second ||
		c.LearningTime != 0 || c.LogLevel != slog.LevelDebug || c.Hook != "/usr/lib/ddhcpd/hook" ||
		c.ControlSocket != "/tmp/ctl" || c.StateDir != "/tmp/st" || len(c.Options) != 3 {
		t.Errorf("parsed: %+v", c)
	}
	if o := c.Options[0]; o.Code != 3 || string(o.Data) != "\x0a\x74\xfe\xfe" {
		t.Errorf("option 3: %+v", o)
	}
	c, err = Parse([]string{"-S", "-i", "bat0,mesh1", "-reserve", "10.0.0.5,10.0.0.10-10.0.0.20", "-learning", "2s"})
	if err != nil || !c.NoDHCP || c.SpareLeases != 0 || len(c.MeshInterfaces) != 2 || len(c.Reserved) != 2 || c.LearningTime != 2*time.Second {
		t.Errorf("%+v %v", c, err)
	}
}

// TestCNumbers: the option bytes of -o, and -B, are read as the C ddhcpd
// reads them with strtoul(s, NULL, 0): decimal, 0x hexadecimal, 0 octal.
func TestCNumbers(t *testing.T) {
	for _, tt := range []struct {
		opt  string
		want string
	}{
		{"3:4:10.116.254.254", "\x0a\x74\xfe\xfe"},
		{"3:4:0x0a.0x74.0xfe.0xFE", "\x0a\x74\xfe\xfe"},
		{"3:4:0X0A.0X74.0XFE.0Xfe", "\x0a\x74\xfe\xfe"},
		{"3:4:012.0164.0376.0376", "\x0a\x74\xfe\xfe"},
		{"3:4:0.00.0x0.000", "\x00\x00\x00\x00"},
		{"3:4:10.0x74.0376.254", "\x0a\x74\xfe\xfe"},
		{"51:4:0.0.0x01.0x2c", "\x00\x00\x01\x2c"},
		{"012:1:1", "\x01"}, // the code is decimal 12, as atoi reads it
	} {
		o, err := ParseOption(tt.opt)
		if err != nil || string(o.Data) != tt.want {
			t.Errorf("%s: %q %v, want %q", tt.opt, o.Data, err, tt.want)
		}
	}
	if o, _ := ParseOption("012:1:1"); o.Code != 12 {
		t.Errorf("012:1:1: code %d, want 12", o.Code)
	}
	// On the command line, with the lease time taken from option 51.
	c, err := Parse([]string{"-o", "51:4:0.0.0x01.054", "-o", "3:4:0x0a.0164.0376.254", "-B", "0x3c", "-N", "10.0.0.0/24"})
	if err != nil || c.LeaseTime != 300*time.Second || c.BlockTimeout != time.Minute || string(c.Options[1].Data) != "\x0a\x74\xfe\xfe" {
		t.Errorf("%v %v %v %v", c.LeaseTime, c.BlockTimeout, c.Options, err)
	}
	if c, err := Parse([]string{"-B", "074"}); err != nil || c.BlockTimeout != time.Minute {
		t.Errorf("-B 074: %v %v", c.BlockTimeout, err)
	}
}

// TestDaemonFlags: -d detaches and -D stays in the foreground; the last one
// given wins, as in the C ddhcpd; both cluster with the other C flags.
func TestDaemonFlags(t *testing.T) {
	for _, tt := range []struct {
		args string
		want bool
	}{
		{"", false},
		{"-d", true},
		{"-D", false},
		{"-d -D", false},
		{"-D -d", true},
		{"-Ld", true},
		{"-dLv", true},
		{"-dD", false},
	} {
		c, err := Parse(strings.Fields(tt.args))
		if err != nil || c.Daemonize != tt.want {
			t.Errorf("%q: daemonize %v %v, want %v", tt.args, c.Daemonize, err, tt.want)
		}
	}
	c, err := Parse([]string{"-pid-file", "/var/run/ddhcpd.pid"})
	if err != nil || c.PidFile != "/var/run/ddhcpd.pid" {
		t.Errorf("-pid-file: %q %v", c.PidFile, err)
	}
}

// TestGluonCommandLine: the command line the gluon package's init script
// (ffgraz-ddhcpd) builds from its UCI file: -D first, every setting as a C
// flag, the hook, the raw options.
func TestGluonCommandLine(t *testing.T) {
	args := strings.Fields(`-D -s 2 -b 2 -B 300 -c local-node -i mmfd0 -N 10.187.124.0/22 -t 15 -H /etc/ddhcpd.hook -o 51:4:0.0.1.44 -o 54:4:10.187.127.254 -o 1:4:255.255.252.0 -o 3:4:10.187.127.254 -o 6:4:10.187.127.254`)
	c, err := Parse(args)
	if err != nil {
		t.Fatal(err)
	}
	if c.Daemonize || c.SpareLeases != 2 || c.SizeExp != 2 || c.BlockTimeout != 300*time.Second ||
		!slices.Equal(c.ClientInterfaces, []string{"local-node"}) || !slices.Equal(c.MeshInterfaces, []string{"mmfd0"}) ||
		c.Pool.String() != "10.187.124.0/22" || c.TentativeTimeout != 15*time.Second || c.Hook != "/etc/ddhcpd.hook" ||
		c.LeaseTime != 300*time.Second || len(c.Options) != 5 {
		t.Errorf("%+v", c)
	}
}

// TestNodeIDFile: the flash copy of the node id is -node-id-file (UCI
// node_id_file), by default beside the -persist file.
func TestNodeIDFile(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, ""},
		{[]string{"-persist", "/etc/ddhcpd/state.json"}, "/etc/ddhcpd/node_id"},
		{[]string{"-node-id-file", "/overlay/id"}, "/overlay/id"},
		{[]string{"-persist", "/etc/ddhcpd/state.json", "-node-id-file", "/overlay/id"}, "/overlay/id"},
	} {
		c, err := Parse(tt.args)
		if err != nil || c.NodeIDFile != tt.want {
			t.Errorf("%q: %q %v, want %q", tt.args, c.NodeIDFile, err, tt.want)
		}
	}
	c, err := Parse([]string{"-uci", writeUCI(t, "config ddhcpd 'settings'\n\toption node_id_file '/etc/ddhcpd/id'\n")})
	if err != nil || len(c.Warnings) > 0 || c.NodeIDFile != "/etc/ddhcpd/id" {
		t.Errorf("UCI node_id_file: %q %v %v", c.NodeIDFile, err, c.Warnings)
	}
}

func TestSyslogFlag(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, ""},
		{[]string{"-syslog"}, "/dev/log"},
		{[]string{"-syslog=/tmp/log"}, "/tmp/log"},
		{[]string{"-syslog", "-syslog=false"}, ""},
		{[]string{"-Lv", "-syslog", "-S"}, "/dev/log"},
	} {
		c, err := Parse(tt.args)
		if err != nil || c.Syslog != tt.want {
			t.Errorf("%q: %q %v, want %q", tt.args, c.Syslog, err, tt.want)
		}
	}
	var ce *Error
	if _, err := Parse([]string{"-syslog="}); !errors.As(err, &ce) || ce.Flag != "syslog" {
		t.Errorf("-syslog=: %v", err)
	}
}

func TestBadFlags(t *testing.T) {
	tests := []struct {
		args  string
		flag  string
		value string
	}{
		{"-b 8", "b", "8"}, // C: block size 0, SIGFPE
		{"-b -1", "b", "-1"},
		{"-N 10.0.0.0/30 -b 3", "N", "10.0.0.0/30"}, // C: 0 blocks, keeps running
		{"-N 10.0.0.0/7", "N", "10.0.0.0/7"},
		{"-N banana", "N", "banana"},
		{"-s 300000000", "s", "300000000"}, // C: wraps at 256
		{"-t 1", "t", "1"},
		{"-B 0", "B", "0"},
		{"-B 70000", "B", "70000"},
		{"-o 3:4:10.0.0", "o", "3:4:10.0.0"},
		{"-o 300:1:1", "o", "300:1:1"},
		{"-o 3:1:256", "o", "3:1:256"},
		{"-o 3:1:0x100", "o", "3:1:0x100"}, // C: wraps to 0
		{"-o 3:1:08", "o", "3:1:08"},       // C: reads 0 and stops at the 8
		{"-o 3:1:-1", "o", "3:1:-1"},       // C: 255
		{"-o 3:1:0b1", "o", "3:1:0b1"},     // Go's forms are not C's
		{"-o 3:1:0o1", "o", "3:1:0o1"},
		{"-o 3:1:1_0", "o", "3:1:1_0"},
		{"-o 3:1:0x", "o", "3:1:0x"},
		{"-o 0x3:1:1", "o", "0x3:1:1"}, // code and length are decimal (atoi)
		{"-B 0x", "B", "0x"},
		{"-B 0x10000", "B", "0x10000"},
		{"-reserve 10.0.0.9-10.0.0.1", "reserve", "10.0.0.9-10.0.0.1"},
		{"-x", "x", ""},
		{"-i", "i", ""},
		{"-i averyveryverylongname", "i", "averyveryverylongname"},
		{"-learning -3s", "learning", "-3s"},
		{"-inquire-interval 300ms", "inquire-interval", "300ms"},
		{"-inquire-interval 0s", "inquire-interval", "0s"},
		{"-leasefile tmp/ddhcpd.leases", "leasefile", "tmp/ddhcpd.leases"},
		{"-leasefile /tmp/", "leasefile", "/tmp/"},
	}
	for _, tt := range tests {
		_, err := Parse(strings.Fields(tt.args))
		var ce *Error
		if !errors.As(err, &ce) {
			t.Errorf("%s: error %v is not a config error", tt.args, err)
			continue
		}
		if ce.Flag != tt.flag || ce.Value != tt.value {
			t.Errorf("%s: error names -%s %q (%v)", tt.args, ce.Flag, ce.Value, err)
		}
	}
}

func TestHelpVersion(t *testing.T) {
	if _, err := Parse([]string{"-h"}); err != ErrHelp {
		t.Errorf("-h: %v", err)
	}
	if _, err := Parse([]string{"-V"}); err != ErrVersion {
		t.Errorf("-V: %v", err)
	}
}

func TestTypedOptions(t *testing.T) {
	tests := []struct {
		in   string
		code uint8
		data string
	}{
		{"6:ips:10.0.0.1,10.0.0.2", 6, "\x0a\x00\x00\x01\x0a\x00\x00\x02"},
		{"3:ip:10.116.254.254", 3, "\x0a\x74\xfe\xfe"},
		{"26:u16:1400", 26, "\x05\x78"},
		{"23:u8:64", 23, "\x40"},
		{"51:u32:600", 51, "\x00\x00\x02\x58"},
		{"15:string:mesh.local", 15, "mesh.local"},
		{"43:hex:01:04:0a:00", 43, "\x01\x04\x0a\x00"},
		{"19:bool:off", 19, "\x00"},
	}
	for _, tt := range tests {
		o, err := ParseTypedOption(tt.in)
		if err != nil || o.Code != tt.code || string(o.Data) != tt.data {
			t.Errorf("%s: %+v %v", tt.in, o, err)
		}
	}
	for _, bad := range []string{"6:ip:10.0.0", "26:u16:70000", "0:u8:1", "15:str:x", "15", "43:hex:zz", "19:bool:maybe", "15:string:"} {
		if _, err := ParseTypedOption(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestDHCPFlags(t *testing.T) {
	c, err := Parse(strings.Fields("-N 10.0.0.0/24 -server-id 10.0.0.1 -o 51:4:0.0.2.88 -probation 10m -host 02:00:00:00:00:09=10.0.0.20 -host id:01aa=10.0.0.21 -always 252 -option 15:string:x"))
	if err != nil {
		t.Fatal(err)
	}
	if c.ServerID.String() != "10.0.0.1" || c.LeaseTime != 600*time.Second || c.Probation != 10*time.Minute ||
		len(c.Hosts) != 2 || c.Hosts[0].MAC.String() != "02:00:00:00:00:09" || string(c.Hosts[1].ClientID) != "\x01\xaa" ||
		!slices.Equal(c.Always, []uint8{252}) || len(c.Options) != 2 {
		t.Errorf("%+v", c)
	}
	for _, args := range []string{"-host 02:00:00:00:00:09=10.9.0.1", "-host nonsense=10.0.0.1", "-server-id 0.0.0.0", "-lease-time 1s"} {
		if _, err := Parse(strings.Fields(args)); err == nil {
			t.Errorf("%s accepted", args)
		}
	}
}
