package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"
)

// This file reads OpenWrt's UCI file syntax (/etc/config/*) the way libuci
// does (file.c and util.c of openwrt/uci):
//
//	package NAME                  optional, ignored
//	config TYPE ['NAME']          opens a section; a NAME seen before reopens it
//	option KEY 'VALUE'            sets KEY; a later option KEY replaces it, an empty VALUE removes it
//	list KEY 'VALUE'              appends VALUE to the list KEY
//
// The statements may be abbreviated to their first letter and separated by
// ";" as well as by line ends. Words are unquoted, 'single quoted' (no
// escapes) or "double quoted" (a backslash takes the next character
// literally), and adjacent pieces join: 'it'\''s' is it's. Quoted words may
// span lines; outside single quotes a backslash at the end of a line joins
// the next line. "#" outside quotes starts a comment that runs to the end of
// the line. Section and option names are letters, digits and "_"; section
// types any printable ASCII.

// MaxUCISize is the largest UCI file ReadUCI accepts.
const MaxUCISize = 1 << 20

// UCIFile is a parsed UCI file: its sections in file order, merged as libuci
// merges them.
type UCIFile struct {
	Name     string // the path, for messages
	Sections []*UCISection
}

// UCISection is one "config TYPE [NAME]" section.
type UCISection struct {
	Type    string
	Name    string // "" for an anonymous section
	Line    int    // of its config statement
	Options []*UCIOption
	index   int // among the file's sections of this type
}

// UCIOption is an option or a list of a section.
type UCIOption struct {
	Name   string
	List   bool       // set with list statements
	Values []UCIValue // one for an option
}

// UCIValue is one value and the line its statement starts on.
type UCIValue struct {
	Text string
	Line int
}

// UCIError is a problem in a UCI file: a syntax error, a bad value, or (as a
// warning) an unknown option. Option and Value are empty when the problem is
// not one option's, Line is 0 when it is the whole file's.
type UCIError struct {
	File            string
	Line            int
	Section, Option string
	Value           string
	Reason          string
}

func (e *UCIError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":")
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	switch {
	case e.Option != "":
		fmt.Fprintf(&b, "option %s %s: ", e.Option, quoteUCI(e.Value))
	case e.Section != "":
		fmt.Fprintf(&b, "section %s: ", e.Section)
	}
	b.WriteString(e.Reason)
	return b.String()
}

// quoteUCI quotes a value for a message the way UCI files quote it, with
// control characters and invalid UTF-8 shown as \xNN and very long values
// cut short.
func quoteUCI(s string) string {
	const max = 200
	var b strings.Builder
	b.WriteByte('\'')
	for i := 0; i < len(s); {
		if i >= max {
			b.WriteString("...")
			break
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '\'':
			b.WriteString(`'\''`)
		case r < 0x20 || r == 0x7f || r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	b.WriteByte('\'')
	return b.String()
}

// Ref names the section as the uci command does: by its name, or as
// @TYPE[N] when it is anonymous.
func (s *UCISection) Ref() string {
	if s.Name != "" {
		return s.Name
	}
	return fmt.Sprintf("@%s[%d]", s.Type, s.index)
}

// Option returns the section's option or list called name, or nil.
func (s *UCISection) Option(name string) *UCIOption {
	for _, o := range s.Options {
		if o.Name == name {
			return o
		}
	}
	return nil
}

// ReadUCI reads and parses a UCI file. Besides a read error it returns
// every syntax error (as *UCIError, joined) together with what could be
// parsed.
func ReadUCI(path string) (*UCIFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &Error{Flag: "uci", Value: path, Reason: pathReason(err)}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxUCISize+1))
	if err != nil {
		return nil, &Error{Flag: "uci", Value: path, Reason: pathReason(err)}
	}
	if len(data) > MaxUCISize {
		return nil, &Error{Flag: "uci", Value: path, Reason: fmt.Sprintf("larger than %d bytes", MaxUCISize)}
	}
	return ParseUCI(path, data)
}

// pathReason is err without the path the message names anyway.
func pathReason(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Op + ": " + pe.Err.Error()
	}
	return err.Error()
}

// ParseUCI parses the text of a UCI file; name is used in messages. It
// returns every syntax error (as *UCIError, joined) together with the
// statements that could be parsed: a bad line is skipped.
func ParseUCI(name string, data []byte) (*UCIFile, error) {
	p := &uciParser{file: &UCIFile{Name: name}, data: data, line: 1}
	for p.pos < len(p.data) {
		p.statement()
	}
	return p.file, errors.Join(p.errs...)
}

type uciParser struct {
	file *UCIFile
	data []byte
	pos  int
	line int
	cur  *UCISection // the section option statements go to
	errs []error
}

func (p *uciParser) fail(line int, option, value, reason string) {
	p.errs = append(p.errs, &UCIError{File: p.file.Name, Line: line, Option: option, Value: value, Reason: reason})
}

func isBlank(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'
}

// statement parses one statement, or skips a blank line, comment or ";".
func (p *uciParser) statement() {
	for p.pos < len(p.data) && isBlank(p.data[p.pos]) {
		p.pos++
	}
	if p.pos == len(p.data) {
		return
	}
	switch p.data[p.pos] {
	case '\n':
		p.pos++
		p.line++
		return
	case ';':
		p.pos++
		return
	case '#':
		p.skipLine()
		return
	}
	line := p.line
	words, err := p.words()
	if err != nil {
		p.errs = append(p.errs, err)
		p.skipLine()
		return
	}
	p.command(line, words)
}

// skipLine moves to the end of the line (not past the newline).
func (p *uciParser) skipLine() {
	for p.pos < len(p.data) && p.data[p.pos] != '\n' {
		p.pos++
	}
}

// words reads the words of a statement up to the end of the line, a ";"
// (consumed) or a comment (skipped).
func (p *uciParser) words() ([]string, error) {
	var words []string
	for {
		for p.pos < len(p.data) && isBlank(p.data[p.pos]) {
			p.pos++
		}
		if p.pos == len(p.data) {
			return words, nil
		}
		switch p.data[p.pos] {
		case '\n':
			return words, nil
		case ';':
			p.pos++
			return words, nil
		case '#':
			p.skipLine()
			return words, nil
		}
		w, err := p.word()
		if err != nil {
			return nil, err
		}
		words = append(words, w)
	}
}

// word reads one word: unquoted, quoted and escaped pieces up to a blank,
// the end of the line, a ";" or a "#".
func (p *uciParser) word() (string, error) {
	var b []byte
	var err error
	for p.pos < len(p.data) {
		switch c := p.data[p.pos]; {
		case isBlank(c) || c == '\n' || c == ';' || c == '#':
			return string(b), nil
		case c == 0:
			return "", p.nul()
		case c == '\'':
			if b, err = p.single(b); err != nil {
				return "", err
			}
		case c == '"':
			if b, err = p.double(b); err != nil {
				return "", err
			}
		case c == '\\':
			b = p.backslash(b)
		default:
			b = append(b, c)
			p.pos++
		}
	}
	return string(b), nil
}

// single reads a single-quoted piece: everything up to the next ', line
// ends included.
func (p *uciParser) single(b []byte) ([]byte, error) {
	start := p.line
	p.pos++
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		switch c {
		case '\'':
			p.pos++
			return b, nil
		case 0:
			return nil, p.nul()
		case '\n':
			p.line++
		}
		b = append(b, c)
		p.pos++
	}
	return nil, &UCIError{File: p.file.Name, Line: start, Reason: "' quote not closed"}
}

// double reads a double-quoted piece, where a backslash takes the next
// character literally.
func (p *uciParser) double(b []byte) ([]byte, error) {
	start := p.line
	p.pos++
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		switch c {
		case '"':
			p.pos++
			return b, nil
		case 0:
			return nil, p.nul()
		case '\\':
			b = p.backslash(b)
			continue
		case '\n':
			p.line++
		}
		b = append(b, c)
		p.pos++
	}
	return nil, &UCIError{File: p.file.Name, Line: start, Reason: `" quote not closed`}
}

// backslash reads an escape: the backslash takes the next character
// literally, and at the end of a line joins the next line.
func (p *uciParser) backslash(b []byte) []byte {
	p.pos++
	rest := p.data[p.pos:]
	switch {
	case len(rest) == 0 || rest[0] == 0: // a NUL is the caller's to report
		return b
	case rest[0] == '\n':
		p.pos++
		p.line++
		return b
	case len(rest) >= 2 && rest[0] == '\r' && rest[1] == '\n':
		p.pos += 2
		p.line++
		return b
	}
	p.pos++
	return append(b, rest[0])
}

func (p *uciParser) nul() error {
	return &UCIError{File: p.file.Name, Line: p.line, Reason: "NUL byte in the file"}
}

// command carries out one statement.
func (p *uciParser) command(line int, words []string) {
	if len(words) == 0 {
		return
	}
	cmd, args := words[0], words[1:]
	switch cmd {
	case "package", "p":
		if len(args) == 0 || args[0] == "" {
			p.fail(line, "", "", "package without a name")
		} else if len(args) > 1 {
			p.fail(line, "", "", "too many arguments to package")
		}
	case "config", "c":
		// A bad section swallows its options, so they do not land in the
		// section before it.
		p.cur = &UCISection{Line: line}
		switch {
		case len(args) == 0 || args[0] == "":
			p.fail(line, "", "", "config without a section type")
		case !validUCIType(args[0]):
			p.fail(line, "", "", fmt.Sprintf("section type %s: want printable ASCII without spaces", quoteUCI(args[0])))
		case len(args) > 2:
			p.fail(line, "", "", "too many arguments to config (quote a name with spaces)")
		case len(args) == 2 && args[1] != "" && !validUCIName(args[1]):
			p.fail(line, "", "", fmt.Sprintf("section name %s: want letters, digits and _", quoteUCI(args[1])))
		default:
			name := ""
			if len(args) == 2 {
				name = args[1]
			}
			p.section(line, args[0], name)
		}
	case "option", "o", "list", "l":
		list := cmd[0] == 'l'
		switch {
		case len(args) == 0 || args[0] == "":
			p.fail(line, "", "", cmd+" without a name")
		case !validUCIName(args[0]):
			p.fail(line, args[0], argOr(args, 1), "option name: want letters, digits and _")
		case len(args) > 2:
			p.fail(line, args[0], args[1], "too many arguments (quote a value with spaces)")
		case p.cur == nil:
			p.fail(line, args[0], argOr(args, 1), cmd+" before the first config section")
		default:
			p.set(line, args[0], argOr(args, 1), list)
		}
	default:
		p.fail(line, "", "", fmt.Sprintf("unknown statement %s (want config, option or list)", quoteUCI(cmd)))
	}
}

func argOr(args []string, i int) string {
	if i < len(args) {
		return args[i]
	}
	return ""
}

// section opens a section; a named one seen before is reopened.
func (p *uciParser) section(line int, typ, name string) {
	n := 0
	for _, s := range p.file.Sections {
		if name != "" && s.Name == name {
			if s.Type != typ {
				p.fail(line, "", "", fmt.Sprintf("section %s was declared with type %s on line %d", name, quoteUCI(s.Type), s.Line))
				return
			}
			p.cur = s
			return
		}
		if s.Type == typ {
			n++
		}
	}
	p.cur = &UCISection{Type: typ, Name: name, Line: line, index: n}
	p.file.Sections = append(p.file.Sections, p.cur)
}

// set carries out option and list statements as libuci does: an option
// replaces the value, an empty one removes the option, a list appends (and
// turns an option into a list).
func (p *uciParser) set(line int, name, value string, list bool) {
	s := p.cur
	o := s.Option(name)
	if !list {
		if value == "" {
			if o != nil {
				s.Options = deleteOption(s.Options, o)
			}
			return
		}
		if o == nil {
			o = &UCIOption{Name: name}
			s.Options = append(s.Options, o)
		}
		o.List = false
		o.Values = []UCIValue{{Text: value, Line: line}}
		return
	}
	if o == nil {
		o = &UCIOption{Name: name}
		s.Options = append(s.Options, o)
	}
	o.List = true
	o.Values = append(o.Values, UCIValue{Text: value, Line: line})
}

func deleteOption(opts []*UCIOption, o *UCIOption) []*UCIOption {
	out := opts[:0]
	for _, x := range opts {
		if x != o {
			out = append(out, x)
		}
	}
	return out
}

// validUCIName says whether s is a valid section or option name.
func validUCIName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// validUCIType says whether s is a valid section type.
func validUCIType(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 {
			return false
		}
	}
	return true
}
