package daemon

import "log/slog"

// levelHandler is a log handler whose level can change at run time; the
// logger main.go gives the daemon implements it.
type levelHandler interface {
	LevelVar() *slog.LevelVar
}

// logLevel returns the variable that sets the daemon logger's level, or nil
// when that level is fixed.
func (d *Daemon) logLevel() *slog.LevelVar {
	if h, ok := d.log.Handler().(levelHandler); ok {
		return h.LevelVar()
	}
	return nil
}
