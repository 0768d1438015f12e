// Command ddhcpd is the decentralized DHCP server daemon. Called as ddhcpctl
// (a symlink, which saves flash on routers) it is the control client.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
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
	detached := cfg.Daemonize && os.Getenv(detachedEnv) == "1"
	os.Unsetenv(detachedEnv) // not for the hooks
	if cfg.Daemonize && !detached {
		for _, w := range cfg.Warnings {
			fmt.Fprintf(os.Stderr, "ddhcpd: warning: %v\n", w)
		}
		return detach(args, cfg)
	}
	if detached && cfg.Syslog == "" {
		cfg.Syslog = config.DefaultSyslogSocket // stderr is /dev/null
	}
	if cfg.PidFile != "" {
		if !detached { // -d: the parent wrote the file already
			if err := writePidFile(cfg.PidFile, os.Getpid()); err != nil {
				fmt.Fprintf(os.Stderr, "ddhcpd: -pid-file %q: %v\n", cfg.PidFile, err)
				return 1
			}
		}
		defer removePidFile(cfg.PidFile)
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

// detachedEnv marks the process that -d started.
const detachedEnv = "DDHCPD_DETACHED"

// detach is -d: it starts the daemon again detached from the terminal, as
// the C ddhcpd's daemon(0, 0) does, and returns at once. The new process
// runs in a session of its own (no controlling terminal) with stdin,
// stdout and stderr on /dev/null, and logs to syslog (/dev/log unless
// -syslog names another socket; the C ddhcpd lost its log here). Unlike
// daemon(0, 0) it keeps the working directory, so relative paths in the
// flags mean the same. The pid file, if asked for, holds the new process's
// pid before detach returns.
func detach(args []string, cfg config.Config) int {
	if cfg.Syslog == "" {
		if _, err := os.Stat(config.DefaultSyslogSocket); err != nil {
			fmt.Fprintf(os.Stderr, "ddhcpd: warning: -d: no syslog socket %s, the log is lost\n", config.DefaultSyslogSocket)
		}
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "ddhcpd: -d: %v\n", err)
		return 1
	}
	cmd := exec.Command(self, args...)
	cmd.Env = append(os.Environ(), detachedEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // stdin, stdout, stderr: /dev/null
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "ddhcpd: -d: %v\n", err)
		return 1
	}
	if cfg.PidFile != "" {
		if err := writePidFile(cfg.PidFile, cmd.Process.Pid); err != nil {
			fmt.Fprintf(os.Stderr, "ddhcpd: -pid-file %q: %v\n", cfg.PidFile, err)
			cmd.Process.Kill()
			cmd.Wait()
			return 1
		}
	}
	cmd.Process.Release()
	return 0
}

// writePidFile writes pid to path, replacing it atomically.
func writePidFile(path string, pid int) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// removePidFile removes path if it still holds our pid.
func removePidFile(path string) {
	if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(os.Getpid()) {
		os.Remove(path)
	}
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
