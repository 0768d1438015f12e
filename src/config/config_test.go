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
