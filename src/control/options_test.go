package control

import (
	"encoding/json"
	"log/slog"
	"testing"
)

func TestDescribeOption(t *testing.T) {
	tests := []struct {
		code             uint8
		data             string
		name, typ, value string
	}{
		{3, "\x0a\x00\x00\x01", "router", "ips", "10.0.0.1"},
		{6, "\x0a\x00\x00\x01\x0a\x00\x00\x02", "dns_server", "ips", "10.0.0.1,10.0.0.2"},
		{6, "\x0a\x00\x00", "dns_server", "hex", "0a0000"},
		{15, "mesh.lan", "domain_name", "string", "mesh.lan"},
		{15, "bad\x00", "domain_name", "hex", "62616400"},
		{51, "\x00\x00\x01\x2c", "lease_time", "u32", "300"},
		{26, "\x05\xdc", "mtu", "u16", "1500"},
		{46, "\x08", "netbios_node_type", "u8", "8"},
		{19, "\x01", "ip_forwarding", "bool", "true"},
		{19, "\x02", "ip_forwarding", "hex", "02"},
		{121, "\x18\x0a\x00\x00\x0a\x00\x00\x01", "classless_routes", "hex", "180a00000a000001"},
		{200, "\xff", "", "hex", "ff"},
		{80, "", "", "hex", ""},
	}
	for _, tt := range tests {
		got := DescribeOption(tt.code, []byte(tt.data), true)
		if got.Name != tt.name || got.Type != tt.typ || got.Value != tt.value || got.Len != len(tt.data) || !got.Always {
			t.Errorf("%d %q: %+v", tt.code, tt.data, got)
		}
	}
}

func TestParseLevel(t *testing.T) {
	tests := []struct {
		raw     string
		want    slog.Level
		wantErr bool
	}{
		{raw: `"debug"`, want: slog.LevelDebug},
		{raw: `"INFO"`, want: slog.LevelInfo},
		{raw: `"warn"`, want: slog.LevelWarn},
		{raw: `"warning"`, want: slog.LevelWarn},
		{raw: `"error"`, want: slog.LevelError},
		{raw: `"3"`, want: slog.LevelInfo},
		{raw: `0`, want: slog.LevelError},
		{raw: `1`, want: slog.LevelError},
		{raw: `2`, want: slog.LevelWarn},
		{raw: `3`, want: slog.LevelInfo},
		{raw: `4`, want: slog.LevelDebug},
		{raw: `5`, wantErr: true},
		{raw: `-1`, wantErr: true},
		{raw: `4.5`, wantErr: true},
		{raw: `true`, wantErr: true},
		{raw: `"loud"`, wantErr: true},
		{raw: `{}`, wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseLevel(json.RawMessage(tt.raw))
		if (err != nil) != tt.wantErr || (!tt.wantErr && got != tt.want) {
			t.Errorf("%s: %v %v", tt.raw, got, err)
		}
	}
	for l, want := range map[slog.Level]LogLevel{
		slog.LevelDebug: {"debug", 4}, slog.LevelDebug - 4: {"debug", 4}, slog.LevelInfo: {"info", 3},
		slog.LevelWarn: {"warn", 2}, slog.LevelError: {"error", 1}, slog.LevelError + 4: {"error", 1},
	} {
		if got := DescribeLevel(l); got != want {
			t.Errorf("%v: %+v", l, got)
		}
	}
}
