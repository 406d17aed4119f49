package pebble

import (
	"context"
	"fmt"
	"log/slog"
)

// slogLogger adapts a *slog.Logger to Pebble's Logger.
type slogLogger struct{ l *slog.Logger }

// Infof logs Pebble's routine messages at Debug level.
func (s slogLogger) Infof(format string, args ...any) {
	if s.l.Enabled(context.Background(), slog.LevelDebug) {
		s.l.Debug(fmt.Sprintf(format, args...))
	}
}

// Errorf logs at Error level.
func (s slogLogger) Errorf(format string, args ...any) {
	s.l.Error(fmt.Sprintf(format, args...))
}

// Fatalf logs at Error level and panics: Pebble calls it on invariant
// violations it cannot survive, and a library must not exit the process.
func (s slogLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.l.Error(msg)
	panic("state/pebble: fatal: " + msg)
}
