package service

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"
)

// Env is what Main hands an example's run function.
type Env struct {
	// Addrs are the broker's addresses: the -brokers flag, KAFKA_BROKERS,
	// or the embedded broker's.
	Addrs []string
	// StateDir is a temporary state directory, removed when Main returns.
	StateDir string
	// RunID is unique per run: examples suffix their topics and
	// application ids with it, so runs on a real cluster never share them.
	RunID string
	// Logger logs to standard error at the -log-level flag's level.
	Logger *slog.Logger
	// Out is standard output.
	Out io.Writer
}

// Main is an example's main: it parses the command line (register the
// example's own flags on flag.CommandLine first; f must be registered
// there too), picks the broker, makes a state directory, and calls run
// with a context that ends on SIGINT or SIGTERM. A failure is logged and
// the process exits 1.
func Main(name string, f *Flags, run func(ctx context.Context, env Env) error) {
	flag.Parse()
	logger := f.Logger(os.Stderr)
	os.Exit(mainRun(name, f, logger, run))
}

func mainRun(name string, f *Flags, logger *slog.Logger, run func(ctx context.Context, env Env) error) int {
	ctx, cancel := SignalContext()
	defer cancel()
	addrs, stop, err := Brokers(ctx, f.Brokers, logger)
	if err != nil {
		logger.Error("no broker", "err", err)
		return 1
	}
	defer stop()
	stateDir, err := os.MkdirTemp("", name+"-state-")
	if err != nil {
		logger.Error("state dir", "err", err)
		return 1
	}
	defer os.RemoveAll(stateDir)
	env := Env{Addrs: addrs, StateDir: stateDir, RunID: fmt.Sprint(time.Now().UnixNano()), Logger: logger, Out: os.Stdout}
	if err := run(ctx, env); err != nil {
		logger.Error(name+" failed", "err", err)
		return 1
	}
	return 0
}
