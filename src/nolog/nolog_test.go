package nolog

import (
	"context"
	"log/slog"
	"testing"
)

func TestHandler(t *testing.T) {
	ctx := context.Background()
	for _, l := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError, slog.LevelError + 100} {
		if Handler.Enabled(ctx, l) {
			t.Errorf("enabled for %v", l)
		}
	}
	h := Handler.WithAttrs([]slog.Attr{slog.Int("a", 1)}).WithGroup("g")
	if h.Enabled(ctx, slog.LevelError) {
		t.Error("a derived handler is enabled")
	}
	log := slog.New(h)
	log.Error("dropped", "k", "v") // must not panic
	if err := Handler.Handle(ctx, slog.Record{}); err != nil {
		t.Error(err)
	}
}
