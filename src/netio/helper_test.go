package netio_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"ddhcpd/src/netio"
)

// The integration tests run the real netio code inside network namespaces:
// the test binary re-executes itself under "ip netns exec" as a helper
// process (TestHelperProcess) that opens a Mesh, prints what it receives
// and runs commands read from standard input.
//
// Output lines of the helper:
//
//	READY
//	RECV iface port src dst hoplimit truncated len data
//	EVENT iface open|closed index linklocal reason...
//	ID OK [detail]   or   ID ERR error
//
// Commands ("ID" is a number echoed in the reply):
//
//	ID mcast PORT DATA
//	ID mcaston IFACE PORT DATA
//	ID mcastbig PORT SIZE
//	ID ucast SRCPORT ADDRPORT DATA
//	ID status                 -> ID OK name,index,up,ll,open name,...
//	ID stats                  -> ID OK received=N own=N dropped=N truncated=N
//	ID close                  -> ID OK goroutines base=N now=N
const helperEnv = "NETIO_TEST_HELPER"

// TestHelperProcess is the helper process; in a normal test run it does
// nothing.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		return
	}
	if err := helperMain(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(2)
	}
	os.Exit(0)
}

func helperMain(stdin io.Reader, stdout io.Writer) error {
	var outMu sync.Mutex
	say := func(format string, args ...any) {
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Fprintf(stdout, format+"\n", args...)
	}
	ifaces := strings.Split(os.Getenv("NETIO_TEST_IFACES"), ",")
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))

	base := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := netio.MeshConfig{Interfaces: ifaces, Logger: log}
	if os.Getenv("NETIO_TEST_POLL_ONLY") == "1" {
		cfg.Recheck = 200 * time.Millisecond
		cfg = netio.PollOnly(cfg)
	}
	m, err := netio.OpenMesh(ctx, cfg)
	if err != nil {
		return err
	}
	var printers sync.WaitGroup
	printers.Add(2)
	go func() {
		defer printers.Done()
		for p := range m.Packets() {
			data := string(p.Data)
			if len(p.Data) > 64 || strings.ContainsAny(data, " \n") {
				data = "-"
			}
			say("RECV %s %d %s %s %d %v %d %s", p.Iface, p.Port, p.Src, p.Dst, p.HopLimit, p.Truncated, len(p.Data), data)
		}
	}()
	go func() {
		defer printers.Done()
		for ev := range m.Events() {
			state := "closed"
			if ev.Open {
				state = "open"
			}
			say("EVENT %s %s %d %s %s", ev.Iface, state, ev.Index, ev.LinkLocal, ev.Reason)
		}
	}()
	say("READY")

	sc := bufio.NewScanner(stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		id := f[0]
		detail, err := helperCommand(m, f[1], f[2:])
		if f[1] == "close" && err == nil {
			printers.Wait()
			// Every goroutine of the Mesh must be gone; give the
			// runtime a moment to retire exiting goroutines.
			now := runtime.NumGoroutine()
			for deadline := time.Now().Add(2 * time.Second); now > base && time.Now().Before(deadline); now = runtime.NumGoroutine() {
				time.Sleep(10 * time.Millisecond)
			}
			if now > base {
				buf := make([]byte, 1<<16)
				err = fmt.Errorf("goroutines base=%d now=%d\n%s", base, now, buf[:runtime.Stack(buf, true)])
			} else {
				detail = fmt.Sprintf("goroutines base=%d now=%d", base, now)
			}
		}
		if err != nil {
			say("%s ERR %s", id, strings.ReplaceAll(err.Error(), "\n", " | "))
		} else {
			say("%s OK %s", id, detail)
		}
	}
	return sc.Err()
}

func helperCommand(m *netio.Mesh, cmd string, args []string) (string, error) {
	port := func(s string) (uint16, error) {
		p, err := strconv.ParseUint(s, 10, 16)
		return uint16(p), err
	}
	switch {
	case cmd == "mcast" && len(args) == 2:
		p, err := port(args[0])
		if err != nil {
			return "", err
		}
		return "", m.Multicast(p, []byte(args[1]))
	case cmd == "mcaston" && len(args) == 3:
		p, err := port(args[1])
		if err != nil {
			return "", err
		}
		return "", m.MulticastOn(args[0], p, []byte(args[2]))
	case cmd == "mcastbig" && len(args) == 2:
		p, err := port(args[0])
		if err != nil {
			return "", err
		}
		size, err := strconv.Atoi(args[1])
		if err != nil {
			return "", err
		}
		return "", m.Multicast(p, make([]byte, size))
	case cmd == "ucast" && len(args) == 3:
		p, err := port(args[0])
		if err != nil {
			return "", err
		}
		dst, err := netip.ParseAddrPort(args[1])
		if err != nil {
			return "", err
		}
		return "", m.Unicast(p, dst, []byte(args[2]))
	case cmd == "status":
		var parts []string
		for _, st := range m.Interfaces() {
			parts = append(parts, fmt.Sprintf("%s,%d,%v,%s,%v", st.Name, st.Index, st.Up, st.LinkLocal, st.Open))
		}
		return strings.Join(parts, " "), nil
	case cmd == "stats":
		s := m.Stats()
		return fmt.Sprintf("received=%d own=%d dropped=%d truncated=%d opens=%d", s.Received, s.Own, s.Dropped, s.Truncated, s.Opens), nil
	case cmd == "close":
		// The caller then waits for the printers, which end only when
		// Close has closed the Packets and Events channels.
		return "", m.Close()
	}
	return "", fmt.Errorf("bad command %q %q", cmd, args)
}
