package luci

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// ubus status codes (libubus) and the JSON-RPC errors of uhttpd's ubus
// handler that the page server answers with.
const (
	ubusOK             = 0
	ubusMethodNotFound = 3
	ubusInvalidArg     = 2
	ubusNoData         = 5
	ubusTimeout        = 7

	rpcObjectNotFound = -32000
	rpcAccessDenied   = -32002
	rpcInvalidRequest = -32600
	rpcMethodNotFound = -32601
)

// pluginTimeout is how long one run of the plugin may take (rpcd kills
// exec plugins after its own timeout, 30 s by default).
const pluginTimeout = 10 * time.Second

// appDir is the LuCI app, relative to this package.
var appDir = filepath.Join("..", "..", "openwrt", "luci-app-ddhcpd")

// menuEntry is one node of a LuCI menu.d file.
type menuEntry struct {
	Title  string `json:"title"`
	Order  int    `json:"order"`
	Action struct {
		Type string `json:"type"`
		Path string `json:"path"`
	} `json:"action"`
	Depends struct {
		ACL []string `json:"acl"`
	} `json:"depends"`
}

// aclGroup is one group of an rpcd acl.d file.
type aclGroup struct {
	Description string `json:"description"`
	Read        struct {
		Ubus map[string][]string `json:"ubus"`
	} `json:"read"`
	Write map[string]json.RawMessage `json:"write"`
}

func readJSON(t testing.TB, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func loadMenu(t testing.TB) map[string]menuEntry {
	var m map[string]menuEntry
	readJSON(t, filepath.Join(appDir, "root/usr/share/luci/menu.d/luci-app-ddhcpd.json"), &m)
	return m
}

func loadACL(t testing.TB) map[string]aclGroup {
	var a map[string]aclGroup
	readJSON(t, filepath.Join(appDir, "root/usr/share/rpcd/acl.d/luci-app-ddhcpd.json"), &a)
	return a
}

// pageServer plays the router's web server for the LuCI page: uhttpd
// serving /www, LuCI's dispatcher rendering the menu entry's view page, and
// the ubus JSON-RPC endpoint, which checks the session's access against the
// app's ACL and answers calls the way rpcd does for an exec plugin: it runs
// "PLUGIN call METHOD" with the arguments on standard input and takes the
// JSON object the plugin prints as the reply.
type pageServer struct {
	t      testing.TB
	plugin string   // the plugin as rpcd would run it
	env    []string // extra environment of the plugin (the socket path)
	url    string   // base URL once started

	object  string          // the ubus object: the plugin's file name
	methods map[string]bool // what "PLUGIN list" registered
	granted map[string]bool // "object.method" the session may call
	pages   map[string]menuEntry
	poll    int // L.env.pollinterval of the page

	mu     sync.Mutex
	calls  map[string]int // per method
	denied []string       // refused calls and plugin failures, for the test to report
}

func newPageServer(t testing.TB, plugin string, env []string, pollInterval int) *pageServer {
	t.Helper()
	s := &pageServer{
		t: t, plugin: plugin, env: env, poll: pollInterval,
		object:  filepath.Base(plugin),
		methods: map[string]bool{},
		granted: map[string]bool{},
		pages:   loadMenu(t),
		calls:   map[string]int{},
	}
	// rpcd at start: "PLUGIN list" registers the object and its methods.
	ctx, cancel := context.WithTimeout(context.Background(), pluginTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, plugin, "list")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s list: %v", plugin, err)
	}
	var sigs map[string]map[string]any
	if err := json.Unmarshal(out, &sigs); err != nil {
		t.Fatalf("%s list: not a JSON object of method signatures: %v: %q", plugin, err, out)
	}
	for m := range sigs {
		s.methods[m] = true
	}
	// The session of a LuCI user who may see the app: its ACL groups.
	for _, g := range loadACL(t) {
		for obj, ms := range g.Read.Ubus {
			for _, m := range ms {
				s.granted[obj+"."+m] = true
			}
		}
	}
	return s
}

// start serves on 127.0.0.1 at a free port until the test ends.
func (s *pageServer) start() {
	s.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.t.Fatal(err)
	}
	srv := &http.Server{Handler: s.handler(), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	s.t.Cleanup(func() { srv.Close(); <-done })
	s.url = "http://" + ln.Addr().String()
}

func (s *pageServer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/luci-static/resources/", http.StripPrefix("/luci-static/resources/",
		http.FileServer(http.Dir(filepath.Join(appDir, "htdocs", "luci-static", "resources")))))
	mux.Handle("/luci-static/stub/", http.StripPrefix("/luci-static/stub/",
		http.FileServer(http.Dir(filepath.Join("testdata", "luci")))))
	mux.HandleFunc("/ubus", s.ubus)
	mux.HandleFunc("/ubus/", s.ubus)
	mux.HandleFunc("/cgi-bin/luci/", s.page)
	mux.HandleFunc("/favicon.ico", http.NotFound)
	return mux
}

// page renders a menu entry of type "view" as LuCI does: the page frame
// with an empty #view that the view fills.
func (s *pageServer) page(w http.ResponseWriter, r *http.Request) {
	path := strings.Trim(strings.TrimPrefix(r.URL.Path, "/cgi-bin/luci/"), "/")
	e, ok := s.pages[path]
	if !ok || e.Action.Type != "view" {
		http.NotFound(w, r)
		return
	}
	crumbs := strings.Split(path, "/")
	env, _ := json.Marshal(map[string]any{"pollinterval": s.poll, "ubuspath": "/ubus/"})
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, `<!DOCTYPE html>
<html lang="en"><head>
<meta charset="utf-8">
<title>%[1]s - LuCI</title>
<link rel="stylesheet" href="/luci-static/stub/luci.css">
<script>window.stubEnv = %[2]s;</script>
<script src="/luci-static/stub/luci.js"></script>
</head><body>
<header><span class="brand">OpenWrt</span><span class="menu">%[3]s &rsaquo; <b>%[1]s</b></span></header>
<div id="maincontent"><div id="view"></div></div>
<footer>test page: a stand-in for LuCI's client API serving the real view and the real rpcd plugin</footer>
<script>L.boot(%[4]q);</script>
</body></html>
`, html.EscapeString(e.Title), env, html.EscapeString(capitalize(crumbs[1])), e.Action.Path)
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

type rpcRequest struct {
	JSONRPC string            `json:"jsonrpc"`
	ID      json.RawMessage   `json:"id"`
	Method  string            `json:"method"`
	Params  []json.RawMessage `json:"params"`
}

type rpcReply struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  []any           `json:"result,omitempty"`
	Error   *rpcError       `json:"error,omitempty"`
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// ubus answers a JSON-RPC request or a batch of them.
func (s *pageServer) ubus(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := readAll(r, 1<<20)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] == '[' {
		var reqs []rpcRequest
		if err := json.Unmarshal(body, &reqs); err != nil {
			json.NewEncoder(w).Encode(s.fail(nil, rpcInvalidRequest, "Invalid request"))
			return
		}
		out := make([]rpcReply, 0, len(reqs))
		for _, q := range reqs {
			out = append(out, s.answer(r.Context(), q))
		}
		json.NewEncoder(w).Encode(out)
		return
	}
	var q rpcRequest
	if err := json.Unmarshal(body, &q); err != nil {
		json.NewEncoder(w).Encode(s.fail(nil, rpcInvalidRequest, "Invalid request"))
		return
	}
	json.NewEncoder(w).Encode(s.answer(r.Context(), q))
}

func readAll(r *http.Request, max int64) ([]byte, error) {
	var b bytes.Buffer
	n, err := b.ReadFrom(http.MaxBytesReader(nil, r.Body, max))
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, errors.New("empty body")
	}
	return b.Bytes(), nil
}

func (s *pageServer) fail(id json.RawMessage, code int, msg string) rpcReply {
	s.mu.Lock()
	s.denied = append(s.denied, fmt.Sprintf("%d %s", code, msg))
	s.mu.Unlock()
	return rpcReply{JSONRPC: "2.0", ID: id, Error: &rpcError{Code: code, Message: msg}}
}

func (s *pageServer) answer(ctx context.Context, q rpcRequest) rpcReply {
	if q.JSONRPC != "2.0" || q.Method == "" {
		return s.fail(q.ID, rpcInvalidRequest, "Invalid request")
	}
	if q.Method != "call" {
		return s.fail(q.ID, rpcMethodNotFound, "Method not found")
	}
	var sid, object, method string
	var args map[string]any
	if len(q.Params) != 4 ||
		json.Unmarshal(q.Params[0], &sid) != nil ||
		json.Unmarshal(q.Params[1], &object) != nil ||
		json.Unmarshal(q.Params[2], &method) != nil ||
		json.Unmarshal(q.Params[3], &args) != nil {
		return s.fail(q.ID, rpcInvalidRequest, "Invalid parameters")
	}
	if !s.granted[object+"."+method] {
		return s.fail(q.ID, rpcAccessDenied, "Access denied: "+object+"."+method)
	}
	if object != s.object {
		return s.fail(q.ID, rpcObjectNotFound, "Object not found: "+object)
	}
	s.mu.Lock()
	s.calls[method]++
	s.mu.Unlock()
	if !s.methods[method] {
		return s.status(q.ID, method, ubusMethodNotFound, "not registered by "+s.plugin+" list")
	}
	// uhttpd passes the session along with the arguments.
	if args == nil {
		args = map[string]any{}
	}
	args["ubus_rpc_session"] = sid
	in, _ := json.Marshal(args)
	ctx, cancel := context.WithTimeout(ctx, pluginTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.plugin, "call", method)
	cmd.Env = append(os.Environ(), s.env...)
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.Output()
	if ctx.Err() != nil {
		return s.status(q.ID, method, ubusTimeout, "plugin timed out")
	}
	// rpcd ignores the exit status and parses the first JSON value.
	dec := json.NewDecoder(bytes.NewReader(out))
	var v any
	if derr := dec.Decode(&v); derr != nil {
		return s.status(q.ID, method, ubusNoData, fmt.Sprintf("no JSON from the plugin (%v): %q", err, out))
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return s.status(q.ID, method, ubusInvalidArg, fmt.Sprintf("the plugin printed %T, not an object", v))
	}
	return rpcReply{JSONRPC: "2.0", ID: q.ID, Result: []any{ubusOK, obj}}
}

// status is a call that failed in ubus: the result is the bare code.
func (s *pageServer) status(id json.RawMessage, method string, code int, why string) rpcReply {
	s.mu.Lock()
	s.denied = append(s.denied, fmt.Sprintf("%s: ubus status %d: %s", method, code, why))
	s.mu.Unlock()
	return rpcReply{JSONRPC: "2.0", ID: id, Result: []any{code}}
}

// callCounts returns the calls per method so far.
func (s *pageServer) callCounts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.calls {
		out[k] = v
	}
	return out
}

func (s *pageServer) failures() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.denied)
}
