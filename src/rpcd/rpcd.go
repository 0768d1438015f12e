// Package rpcd is ddhcpd's rpcd exec plugin: it makes the daemon's status
// available on ubus as the object "ddhcpd", for LuCI and for "ubus call".
//
// rpcd runs every executable in /usr/libexec/rpcd once at start as
// "PLUGIN list" and registers the ubus methods the JSON object it prints
// names (each with its argument signature). A call of one of those methods
// runs "PLUGIN call METHOD" with the call's arguments as a JSON object on
// standard input; the plugin prints one JSON object, which becomes the ubus
// reply. rpcd accepts only an object at the top level, so results that are
// arrays are wrapped: {"blocks": [...]}. rpcd ignores the exit status, so a
// failure is a reply too: {"error": "...", "code": "..."}.
//
// The multi-call ddhcpd binary is installed as /usr/libexec/rpcd/ddhcpd
// (a symlink) and hands its arguments to [Main] when the first one is
// "list" or "call". Each call asks the daemon over its control socket.
package rpcd

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"ddhcpd/src/config"
	"ddhcpd/src/control"
)

// EnvSocket names the environment variable that overrides the control
// socket's path (tests, unusual installations).
const EnvSocket = "DDHCPD_SOCKET"

// maxInput bounds the arguments read from standard input.
const maxInput = 64 << 10

// method is one ubus method: a control command whose result is passed on.
type method struct {
	name string
	cmd  string
	list bool // the result is an array, wrapped as {name: [...]}
}

// methods in the order "list" prints them. All are read-only and take no
// arguments.
var methods = []method{
	{name: "status", cmd: "status"},
	{name: "blocks", cmd: "blocks", list: true},
	{name: "leases", cmd: "leases", list: true},
	{name: "tree", cmd: "tree"},
	{name: "stats", cmd: "stats"},
	{name: "options", cmd: "options"},
}

// overview answers status, blocks, leases and tree in one run of the plugin,
// which is what the LuCI page polls: one process start instead of four.
const overview = "overview"

// The methods beside the pass-through ones: overview (above) and
// ipv4leases (ipv4leases.go).
var extraMethods = []string{overview, ipv4Leases}

// overviewParts are asked in this order; status first, so that a daemon that
// cannot be reached is one error.
var overviewParts = []string{"status", "blocks", "leases", "tree"}

// Error codes of the plugin itself; the daemon's own (control.Code...)
// are passed on as they are.
const (
	CodeUsage         = "usage"          // not "list" or "call METHOD"
	CodeUnknownMethod = "unknown_method" // a method "list" does not name
	CodeBadInput      = "bad_input"      // standard input is not a JSON object
	CodeUnreachable   = "unreachable"    // the daemon cannot be reached or answered garbage
)

// Main runs the plugin with args (without the program name: "list", or
// "call" and a method), reading a call's arguments from stdin and writing
// the reply to stdout. socket is the daemon's control socket; empty means
// config.DefaultControlSocket. The environment variable DDHCPD_SOCKET, when
// set, overrides both. Main returns the exit status: 0 when the reply is a
// result, 1 when it is an error from or about the daemon, 2 on a usage
// error (an unknown method, bad input).
func Main(args []string, stdin io.Reader, stdout io.Writer, socket string) int {
	if env := os.Getenv(EnvSocket); env != "" {
		socket = env
	}
	if socket == "" {
		socket = config.DefaultControlSocket
	}
	switch {
	case len(args) == 1 && args[0] == "list":
		stdout.Write(List())
		return 0
	case len(args) == 2 && args[0] == "call":
		out, status := Call(socket, args[1], stdin)
		stdout.Write(out)
		return status
	}
	stdout.Write(failure(CodeUsage, `usage: ddhcpd list | ddhcpd call METHOD (arguments as a JSON object on standard input); methods: `+strings.Join(Methods(), ", ")))
	return 2
}

// Methods lists the names of the ubus methods.
func Methods() []string {
	names := make([]string, 0, len(methods)+len(extraMethods))
	for _, m := range methods {
		names = append(names, m.name)
	}
	return append(names, extraMethods...)
}

// List is what "list" prints: every method with its (empty) argument
// signature, as one line of JSON.
func List() []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, name := range Methods() {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q:{}", name)
	}
	b.WriteString("}\n")
	return b.Bytes()
}

// Call answers one method: the reply object as one line of JSON, and the
// exit status Main returns. stdin holds the call's arguments; none of the
// methods takes any, and the fields rpcd adds (ubus_rpc_session) are
// ignored, but anything that is not a JSON object is refused.
func Call(socket, name string, stdin io.Reader) ([]byte, int) {
	if err := readArgs(stdin); err != nil {
		return failure(CodeBadInput, err.Error()), 2
	}
	switch name {
	case overview:
		return callOverview(socket)
	case ipv4Leases:
		return callIPv4Leases(socket)
	}
	for _, m := range methods {
		if m.name != name {
			continue
		}
		raw, err := ask(socket, m.cmd)
		if err != nil {
			return failureOf(err), 1
		}
		return line(shape(m, raw)), 0
	}
	return failure(CodeUnknownMethod, fmt.Sprintf("unknown method %q; known: %s", name, strings.Join(Methods(), ", "))), 2
}

// readArgs checks the arguments on stdin. A terminal is not read: a person
// trying "ddhcpd call status" by hand gets an answer at once.
func readArgs(stdin io.Reader) error {
	if stdin == nil {
		return nil
	}
	if f, ok := stdin.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			return nil
		}
	}
	data, err := io.ReadAll(io.LimitReader(stdin, maxInput+1))
	if err != nil {
		return fmt.Errorf("read arguments: %v", err)
	}
	if len(data) > maxInput {
		return fmt.Errorf("arguments longer than %d bytes", maxInput)
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil
	}
	var args map[string]json.RawMessage
	if err := json.Unmarshal(data, &args); err != nil || args == nil {
		return fmt.Errorf("arguments: want a JSON object, got %.60q", data)
	}
	return nil
}

// ask runs one control command and returns its result as the daemon sent it.
func ask(socket, cmd string) (json.RawMessage, error) {
	var raw json.RawMessage
	if err := control.Call(socket, cmd, nil, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// shape makes a result fit rpcd: objects pass as they are, anything else is
// wrapped in an object under the method's name.
func shape(m method, raw json.RawMessage) json.RawMessage {
	raw = normalize(m, raw)
	if raw[0] == '{' {
		return raw
	}
	out, _ := json.Marshal(map[string]json.RawMessage{m.name: raw})
	return out
}

// normalize trims a result and gives a list method's missing result as an
// empty array.
func normalize(m method, raw json.RawMessage) json.RawMessage {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		if m.list {
			return json.RawMessage("[]")
		}
		return json.RawMessage("null")
	}
	return raw
}

// callOverview asks for the parts of the overview one after the other. The
// daemon not answering "status" makes the whole reply an error; a later
// part that fails (an older daemon without "tree") is left out and its
// error given under "errors".
func callOverview(socket string) ([]byte, int) {
	reply := map[string]json.RawMessage{}
	errs := map[string]string{}
	for _, part := range overviewParts {
		raw, err := ask(socket, part)
		if err != nil {
			if part == "status" {
				return failureOf(err), 1
			}
			errs[part] = errorText(err)
			continue
		}
		// Unwrapped: "blocks" is the array itself.
		reply[part] = normalize(methodNamed(part), raw)
	}
	if len(errs) > 0 {
		b, _ := json.Marshal(errs)
		reply["errors"] = b
	}
	out, err := json.Marshal(reply)
	if err != nil {
		return failure(CodeUnreachable, fmt.Sprintf("encode reply: %v", err)), 1
	}
	return line(out), 0
}

func methodNamed(name string) method {
	for _, m := range methods {
		if m.name == name {
			return m
		}
	}
	return method{name: name, cmd: name}
}

// failureOf is the error reply for a failed control call: the daemon's own
// error code, or "unreachable".
func failureOf(err error) []byte {
	var ce *control.Error
	if errors.As(err, &ce) {
		return failure(ce.Code, ce.Message)
	}
	return failure(CodeUnreachable, err.Error())
}

func errorText(err error) string {
	var ce *control.Error
	if errors.As(err, &ce) {
		return ce.Code + ": " + ce.Message
	}
	return err.Error()
}

// failure is an error reply.
func failure(code, msg string) []byte {
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
		Code  string `json:"code"`
	}{msg, code})
	return line(b)
}

func line(b []byte) []byte { return append(b, '\n') }
