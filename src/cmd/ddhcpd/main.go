// Command ddhcpd is the decentralized DHCP server daemon. Called as ddhcpctl
// (a symlink, which saves flash on routers) it is the control client.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"ddhcpd/src/config"
	"ddhcpd/src/ctl"
	"ddhcpd/src/daemon"
	"ddhcpd/src/logging"
	"ddhcpd/src/rpcd"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if filepath.Base(os.Args[0]) == "ddhcpctl" {
		os.Exit(ctl.Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	// rpcd runs /usr/libexec/rpcd/ddhcpd (a symlink to this binary) as
	// "ddhcpd list" and "ddhcpd call METHOD" (arguments as JSON on stdin);
	// the daemon itself takes no positional arguments.
	if len(os.Args) > 1 && (os.Args[1] == "list" || os.Args[1] == "call") {
		os.Exit(rpcd.Main(os.Args[1:], os.Stdin, os.Stdout, ""))
	}
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cfg, err := config.Parse(args)
	switch {
	case errors.Is(err, config.ErrHelp):
		fmt.Print(config.Usage)
		return 0
	case errors.Is(err, config.ErrVersion):
		fmt.Println("ddhcpd", version)
		return 0
	case errors.Is(err, config.ErrCheckConfig):
		for _, w := range cfg.Warnings {
			fmt.Fprintf(os.Stderr, "ddhcpd: warning: %v\n", w)
		}
		fmt.Println("ok")
		return 0
	case err != nil:
		for _, w := range cfg.Warnings {
			fmt.Fprintf(os.Stderr, "ddhcpd: warning: %v\n", w)
		}
		for _, e := range config.Errors(err) {
			fmt.Fprintf(os.Stderr, "ddhcpd: %v\n", e)
		}
		if cfg.CheckConfig {
			return 1
		}
		return 2
	}
	// The level can change at run time ("ddhcpctl loglevel", C "-v N"): the
	// daemon finds the variable through the handler's LevelVar method.
	level := new(slog.LevelVar)
	level.Set(cfg.LogLevel)
	handler, closeLog := logHandler(cfg.Syslog, level)
	defer closeLog()
	log := slog.New(handler)
	for _, w := range cfg.Warnings {
		log.Warn("configuration", "warning", w)
	}
	// SIGHUP's default action would kill the daemon; reloading comes with UCI.
	signal.Ignore(syscall.SIGHUP)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := daemon.Run(ctx, cfg, log, version); err != nil {
		log.Error("ddhcpd failed", "err", err)
		return 1
	}
	return 0
}

// logHandler chooses where the log goes: to the syslog socket with
// -syslog (the procd init script gives it: procd would log every line of
// stderr as daemon.err), to stderr with "<N>" priority prefixes when stderr
// is systemd's journal stream, else to stderr as plain lines.
func logHandler(syslogSocket string, level *slog.LevelVar) (*logging.Handler, func()) {
	switch {
	case syslogSocket != "":
		h, s := logging.NewSyslog(syslogSocket, "ddhcpd", os.Stderr, level)
		return h, func() { s.Close() }
	case logging.JournalStream(os.Getenv("JOURNAL_STREAM"), os.Stderr):
		return logging.NewJournal(os.Stderr, level), func() {}
	}
	return logging.NewText(os.Stderr, level), func() {}
}
