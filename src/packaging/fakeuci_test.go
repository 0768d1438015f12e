package packaging

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"ddhcpd/src/config"
)

// The uci command for the scripts under test, without OpenWrt: the test
// binary itself, run through a wrapper that sets fakeUCIEnv (TestMain hands
// over to fakeUCIMain). It works on real UCI files, as the uci command line
// tool does:
//
//	uci [-q] [-c DIR] get CONFIG.SECTION[.OPTION]
//	uci [-q] [-c DIR] set CONFIG.SECTION=TYPE | CONFIG.SECTION.OPTION=VALUE
//	uci [-q] [-c DIR] delete CONFIG.SECTION[.OPTION]
//	uci [-q] [-c DIR] commit [CONFIG]
//
// Files are read with src/config's UCI parser from DIR (default
// UCI_CONFIG_DIR). Changes are staged, as uci stages them in /tmp/.uci until
// "commit": get sees them, the file does not. A commit writes the file the
// way libuci does (uci_export: "\nconfig TYPE 'NAME'" per section, one
// tab-indented option or list line per value, a final newline). Every call
// is logged, tab-separated, to FAKE_UCI_LOG. Anything else fails loudly, so
// a script that needs more shows up here.

const fakeUCIEnv = "DDHCPD_FAKE_UCI"

// installFakeUCI writes bin/uci in dir: the test binary as uci, its staging
// area and call log in dir.
func installFakeUCI(t *testing.T, dir string) (log string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	log = filepath.Join(dir, "uci.log")
	save := filepath.Join(dir, "uci-staged")
	wrapper := fmt.Sprintf("#!/bin/sh\n%s=1 FAKE_UCI_LOG=%s FAKE_UCI_SAVEDIR=%s exec %s \"$@\"\n",
		fakeUCIEnv, shQuote(log), shQuote(save), shQuote(self))
	writeFile(t, filepath.Join(dir, "bin", "uci"), wrapper, 0o755)
	return log
}

func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// fakeUCIMain is the fake uci; it returns the exit status.
func fakeUCIMain(args []string, stdout, stderr io.Writer) int {
	if log := os.Getenv("FAKE_UCI_LOG"); log != "" {
		f, err := os.OpenFile(log, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			fmt.Fprintln(f, strings.Join(args, "\t"))
			f.Close()
		}
	}
	u := fakeUCI{dir: os.Getenv("UCI_CONFIG_DIR"), save: os.Getenv("FAKE_UCI_SAVEDIR")}
	if u.dir == "" {
		u.dir = "/etc/config"
	}
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "-q":
			u.quiet = true
			args = args[1:]
		case "-c":
			if len(args) < 2 {
				fmt.Fprintln(stderr, "fake uci: -c needs a directory")
				return 1
			}
			u.dir, args = args[1], args[2:]
		default:
			fmt.Fprintf(stderr, "fake uci: unsupported flag %s\n", args[0])
			return 1
		}
	}
	if u.save == "" {
		fmt.Fprintln(stderr, "fake uci: FAKE_UCI_SAVEDIR not set")
		return 1
	}
	err := u.run(args, stdout)
	if err != nil {
		if !u.quiet || !errors.Is(err, errNotFound) {
			fmt.Fprintf(stderr, "uci: %v\n", err)
		}
		return 1
	}
	return 0
}

var errNotFound = errors.New("Entry not found")

type fakeUCI struct {
	dir, save string
	quiet     bool
}

func (u fakeUCI) run(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("fake uci: no command")
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "get", "set", "delete":
		if len(args) != 1 {
			return fmt.Errorf("fake uci: %s takes one argument", cmd)
		}
	case "commit":
		if len(args) > 1 {
			return errors.New("fake uci: commit takes at most one argument")
		}
	default:
		return fmt.Errorf("fake uci: unsupported command %q", cmd)
	}
	if cmd == "commit" {
		return u.commit(args)
	}
	path, value, hasValue := strings.Cut(args[0], "=")
	if hasValue != (cmd == "set") {
		return fmt.Errorf("fake uci: %s %q", cmd, args[0])
	}
	parts := strings.Split(path, ".")
	if len(parts) < 2 || len(parts) > 3 || slices.Contains(parts, "") || strings.HasPrefix(parts[1], "@") {
		return fmt.Errorf("fake uci: unsupported path %q", path)
	}
	f, err := u.load(parts[0])
	if err != nil {
		return err
	}
	sec := section(f, parts[1])
	switch {
	case cmd == "get" && len(parts) == 2:
		if sec == nil {
			return errNotFound
		}
		fmt.Fprintln(stdout, sec.Type)
		return nil
	case cmd == "get":
		if sec == nil || sec.Option(parts[2]) == nil {
			return errNotFound
		}
		var vs []string
		for _, v := range sec.Option(parts[2]).Values {
			vs = append(vs, v.Text)
		}
		fmt.Fprintln(stdout, strings.Join(vs, " "))
		return nil
	case cmd == "set" && len(parts) == 2:
		if sec == nil {
			f.Sections = append(f.Sections, &config.UCISection{Type: value, Name: parts[1]})
		} else {
			sec.Type = value
		}
	case cmd == "set":
		if sec == nil {
			return errNotFound
		}
		if o := sec.Option(parts[2]); o != nil {
			o.List, o.Values = false, []config.UCIValue{{Text: value}}
		} else {
			sec.Options = append(sec.Options, &config.UCIOption{Name: parts[2], Values: []config.UCIValue{{Text: value}}})
		}
	case cmd == "delete" && len(parts) == 2:
		if sec == nil {
			return errNotFound
		}
		f.Sections = slices.DeleteFunc(f.Sections, func(s *config.UCISection) bool { return s == sec })
	case cmd == "delete":
		if sec == nil || sec.Option(parts[2]) == nil {
			return errNotFound
		}
		sec.Options = slices.DeleteFunc(sec.Options, func(o *config.UCIOption) bool { return o.Name == parts[2] })
	}
	return u.stage(parts[0], f)
}

// load reads a config: the staged copy if there is one, else the file.
func (u fakeUCI) load(name string) (*config.UCIFile, error) {
	for _, p := range []string{filepath.Join(u.save, name), filepath.Join(u.dir, name)} {
		data, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return config.ParseUCI(p, data)
	}
	return nil, errNotFound
}

func (u fakeUCI) stage(name string, f *config.UCIFile) error {
	if err := os.MkdirAll(u.save, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(u.save, name), []byte(exportUCI(f)), 0o600)
}

// commit moves staged configs (all, or the one named) to the directory.
func (u fakeUCI) commit(args []string) error {
	names := args
	if len(names) == 0 {
		entries, err := os.ReadDir(u.save)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		for _, e := range entries {
			names = append(names, e.Name())
		}
	}
	for _, name := range names {
		staged := filepath.Join(u.save, name)
		data, err := os.ReadFile(staged)
		if errors.Is(err, os.ErrNotExist) {
			continue // nothing to commit
		}
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(u.dir, name), data, 0o600); err != nil {
			return err
		}
		if err := os.Remove(staged); err != nil {
			return err
		}
	}
	return nil
}

// section finds a named section.
func section(f *config.UCIFile, name string) *config.UCISection {
	for _, s := range f.Sections {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// exportUCI writes a config as libuci's commit does.
func exportUCI(f *config.UCIFile) string {
	q := func(s string) string { return strings.ReplaceAll(s, "'", `'\''`) }
	var b strings.Builder
	for _, s := range f.Sections {
		fmt.Fprintf(&b, "\nconfig %s", q(s.Type))
		if s.Name != "" {
			fmt.Fprintf(&b, " '%s'", q(s.Name))
		}
		b.WriteString("\n")
		for _, o := range s.Options {
			kind := "option"
			if o.List {
				kind = "list"
			}
			for _, v := range o.Values {
				fmt.Fprintf(&b, "\t%s %s '%s'\n", kind, o.Name, q(v.Text))
			}
		}
	}
	b.WriteString("\n")
	return b.String()
}
