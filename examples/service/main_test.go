package service

import (
	"context"
	"errors"
	"os"
	"testing"
)

// Main's body hands run a broker, a state directory that exists during
// the run and is gone after, a run id and a logger, and turns run's error
// into exit code 1.
func TestMainRun(t *testing.T) {
	t.Setenv(BrokersEnv, "")
	logger, logs := bufferLogger()
	var dir string
	code := mainRun("demo", &Flags{}, logger, func(ctx context.Context, env Env) error {
		dir = env.StateDir
		if len(env.Addrs) == 0 || env.RunID == "" || env.Logger == nil || env.Out == nil {
			t.Errorf("env %+v", env)
		}
		if _, err := os.Stat(env.StateDir); err != nil {
			t.Errorf("state dir during the run: %v", err)
		}
		return nil
	})
	if code != 0 {
		t.Fatalf("exit code %d, want 0; logs: %s", code, logs)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("state dir %s after the run: %v, want removed", dir, err)
	}
	if code := mainRun("demo", &Flags{Brokers: "127.0.0.1:1"}, logger, func(context.Context, Env) error {
		return errors.New("boom")
	}); code != 1 {
		t.Fatalf("exit code %d for a failed run, want 1", code)
	}
}
