package config

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
)

// exportUCI writes a parsed file back in UCI syntax, as "uci export" does:
// every word single-quoted, a ' written as '\”.
func exportUCI(f *UCIFile) string {
	q := func(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
	var b strings.Builder
	for _, s := range f.Sections {
		b.WriteString("\nconfig " + q(s.Type))
		if s.Name != "" {
			b.WriteString(" " + q(s.Name))
		}
		b.WriteString("\n")
		for _, o := range s.Options {
			kind := "\toption "
			if o.List {
				kind = "\tlist "
			}
			for _, v := range o.Values {
				b.WriteString(kind + q(o.Name) + " " + q(v.Text) + "\n")
			}
		}
	}
	return b.String()
}

// sameUCI compares two parsed files, line numbers aside.
func sameUCI(a, b *UCIFile) bool {
	if len(a.Sections) != len(b.Sections) {
		return false
	}
	for i, s := range a.Sections {
		t := b.Sections[i]
		if s.Type != t.Type || s.Name != t.Name || s.Ref() != t.Ref() || len(s.Options) != len(t.Options) {
			return false
		}
		for j, o := range s.Options {
			p := t.Options[j]
			if o.Name != p.Name || o.List != p.List || len(o.Values) != len(p.Values) {
				return false
			}
			for k, v := range o.Values {
				if v.Text != p.Values[k].Text {
					return false
				}
			}
		}
	}
	return true
}

// checkUCIErrors fails unless every error is a *UCIError naming a line of
// the file (or a flag's *Error).
func checkUCIErrors(t *testing.T, what string, errs []error, lines int) {
	t.Helper()
	for _, e := range errs {
		if e.Error() == "" {
			t.Fatalf("%s: empty message", what)
		}
		var fe *Error
		if errors.As(e, &fe) {
			continue
		}
		ue, ok := e.(*UCIError)
		if !ok {
			t.Fatalf("%s: %T %v", what, e, e)
		}
		if ue.Line < 1 || ue.Line > lines {
			t.Fatalf("%s: line %d of %d: %v", what, ue.Line, lines, ue)
		}
	}
}

func FuzzUCI(f *testing.F) {
	for _, path := range []string{"testdata/full.uci", "testdata/gluon.uci", "testdata/gluon-shipped.uci", "testdata/bad.uci", "../../files/etc/config/ddhcpd"} {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"config t\noption a 'it'\\''s'\noption b \"x\\\"y\\\n z\"\n",
		"c t n; o a b;l c d # x\nl c 'e\nf'\n",
		"config host\n\toption mac 02:00:00:00:00:01\n\toption ip 10.0.0.300\n",
		"config dhcp_option\n\toption code 3\n\toption len 4\n\toption payload 1.2.3\n",
		"config option\n\toption code dns\n\tlist value '10.0.0.1 10.0.0.2'\n\toption always 1\n",
		"config t n\nconfig u n\noption a '",
		"option a b\n\x00\r\n\\",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lines := bytes.Count(data, []byte("\n")) + 1
		file, err := ParseUCI("fuzz", data)
		checkUCIErrors(t, "parse", Errors(err), lines)

		// What was parsed, written back and parsed again, is the same.
		text := exportUCI(file)
		again, err := ParseUCI("again", []byte(text))
		if err != nil {
			t.Fatalf("export does not parse: %v\n%s", err, text)
		}
		if !sameUCI(file, again) {
			t.Fatalf("export parses differently:\n%s\n%s", dumpUCI(file), dumpUCI(again))
		}

		c := Default()
		_, warns, errs := applyUCI(file, &c)
		checkUCIErrors(t, "warning", warns, lines)
		checkUCIErrors(t, "map", errs, lines)

		// The whole of Parse and Reload on the file (read from memory: the
		// disk would slow the fuzzer down).
		read := func(string) (*UCIFile, error) { return ParseUCI("fuzz", data) }
		c, err = parse([]string{"-uci", "fuzz", "-check-config"}, "", read)
		if err != ErrCheckConfig {
			checkUCIErrors(t, "Parse", Errors(err), lines)
		}
		checkUCIErrors(t, "Parse warning", c.Warnings, lines)
		if _, err := reload("fuzz", c, read); err != nil {
			var re *RestartError
			if !errors.As(err, &re) {
				checkUCIErrors(t, "Reload", Errors(err), lines)
			}
		}
	})
}
