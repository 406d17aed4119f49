package runtime

import (
	"context"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"
)

// kgoLogger passes franz-go's client logs to the App's slog.Logger, one
// level lower than kgo's own (kgo logs every rebalance step at info): kgo
// info becomes slog debug, kgo debug becomes debug-4, warnings and errors
// become slog warnings (the runtime logs the failures that matter itself).
type kgoLogger struct{ l *slog.Logger }

func newKgoLogger(l *slog.Logger) kgo.Logger { return kgoLogger{l.With("component", "kgo")} }

// Level implements kgo.Logger: the most verbose kgo level the slog
// handler would print.
func (k kgoLogger) Level() kgo.LogLevel {
	ctx := context.Background()
	switch {
	case k.l.Enabled(ctx, slog.LevelDebug-4):
		return kgo.LogLevelDebug
	case k.l.Enabled(ctx, slog.LevelDebug):
		return kgo.LogLevelInfo
	case k.l.Enabled(ctx, slog.LevelWarn):
		return kgo.LogLevelWarn
	default:
		return kgo.LogLevelNone
	}
}

// Log implements kgo.Logger.
func (k kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	var lvl slog.Level
	switch level {
	case kgo.LogLevelError, kgo.LogLevelWarn:
		lvl = slog.LevelWarn
	case kgo.LogLevelInfo:
		lvl = slog.LevelDebug
	default:
		lvl = slog.LevelDebug - 4
	}
	k.l.Log(context.Background(), lvl, msg, keyvals...)
}
