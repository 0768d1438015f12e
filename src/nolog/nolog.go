// Package nolog has a slog handler that drops every record, for loggers a
// caller did not configure and for tests. It stands in for
// slog.DiscardHandler, which needs Go 1.24; go.mod's floor is Go 1.23 (the
// OpenWrt 24.10 packages feed).
package nolog

import (
	"context"
	"log/slog"
)

// Handler is enabled for no level, so a record is never even built.
var Handler slog.Handler = discard{}

type discard struct{}

func (discard) Enabled(context.Context, slog.Level) bool  { return false }
func (discard) Handle(context.Context, slog.Record) error { return nil }
func (d discard) WithAttrs([]slog.Attr) slog.Handler      { return d }
func (d discard) WithGroup(string) slog.Handler           { return d }
