// Command restoreapp is a Streamwork application with one large on-disk
// store, for measuring what a crash costs in restoring: the tests run it
// as a separate process, fill its store, kill it (SIGKILL), start it again
// and read how many changelog records the new run restored.
//
// Its topology counts the records of each key of -input in a Pebble store
// ("counts", changelogged) and writes every count to -output:
//
//	input --> GroupByKey --> Count (store "counts") --> output
//
// Usage:
//
//	restoreapp -brokers host:port[,host:port] -app ID -input TOPIC -output TOPIC
//	    -state-dir DIR -report FILE [-guarantee exactly-once|at-least-once]
//	    [-commit-interval 0] [-session-timeout 6s] [-log-level info]
//
// When every task it was assigned has restored its store, it writes to
// -report one line, "restored=<changelog records restored> millis=<time
// from the first assignment to the end of restoring>", and then prints
// "ready" to standard output (and nothing else there); its logs go to
// standard error. SIGTERM or SIGINT shut it down cleanly and it exits 0;
// it exits 1 when the App fails and 2 on bad flags.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/examples/service"
	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// config is what the flags say.
type config struct {
	brokers        []string
	appID          string
	input, output  string
	stateDir       string
	report         string
	guarantee      kstream.DeliveryGuarantee
	commitInterval time.Duration
	sessionTimeout time.Duration
	logLevel       slog.Level
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var (
		c      config
		common service.Flags
	)
	fs := flag.NewFlagSet("restoreapp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	common.Register(fs, service.WithGuarantee(kstream.ExactlyOnce))
	fs.StringVar(&c.appID, "app", "", "application id: the consumer group (required)")
	fs.StringVar(&c.input, "input", "", "input topic (required)")
	fs.StringVar(&c.output, "output", "", "output topic of the counts (required)")
	fs.StringVar(&c.stateDir, "state-dir", "", "state directory of this instance (required)")
	fs.StringVar(&c.report, "report", "", "file the restore figures are written to (required)")
	fs.DurationVar(&c.commitInterval, "commit-interval", 0, "commit interval (0: the guarantee's default)")
	fs.DurationVar(&c.sessionTimeout, "session-timeout", 6*time.Second,
		"group session timeout: how soon the group evicts a killed run (6s is the broker's default minimum)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	c.brokers, c.guarantee, c.logLevel = common.Addrs(), common.Guarantee, common.LogLevel
	switch {
	case len(c.brokers) == 0:
		return c, errors.New("-brokers is required")
	case c.appID == "":
		return c, errors.New("-app is required")
	case c.input == "" || c.output == "":
		return c, errors.New("-input and -output are required")
	case c.stateDir == "" || c.report == "":
		return c, errors.New("-state-dir and -report are required")
	}
	return c, nil
}

func run(args []string, stdout, stderr io.Writer) int {
	c, err := parseFlags(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "restoreapp:", err)
		}
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: c.logLevel})).With("pid", os.Getpid())

	b := kstream.NewBuilder()
	in := kstream.From(b, c.input, serde.String, serde.String)
	kstream.Count(kstream.GroupByKey(in, serde.String, serde.String), kstream.StoreName("counts")).ToStream().To(c.output, serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		fmt.Fprintln(stderr, "restoreapp:", err)
		return 1
	}
	opts := []kstream.Opt{
		kstream.ApplicationID(c.appID),
		kstream.Brokers(c.brokers...),
		kstream.Guarantee(c.guarantee),
		kstream.StateDir(c.stateDir),
		kstream.Logger(logger),
		kstream.ClientOpts(kgo.SessionTimeout(c.sessionTimeout), kgo.HeartbeatInterval(c.sessionTimeout/10)),
	}
	if c.commitInterval > 0 {
		opts = append(opts, kstream.CommitInterval(c.commitInterval))
	}
	app, err := kstream.New(topo, opts...)
	if err != nil {
		fmt.Fprintln(stderr, "restoreapp:", err)
		return 2
	}

	ctx, stop := service.SignalContext()
	defer stop()
	// The watcher reports the restore once every assigned task runs; it
	// ends with the App.
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		var assigned time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			m := app.Metrics()
			if len(m.Tasks) == 0 {
				continue
			}
			if assigned.IsZero() {
				assigned = time.Now()
			}
			if len(m.RestoringTasks) > 0 {
				continue
			}
			line := fmt.Sprintf("restored=%d millis=%d\n", m.RestoredRecords, time.Since(assigned).Milliseconds())
			if err := os.WriteFile(c.report, []byte(line), 0o644); err != nil {
				logger.Error("restoreapp: write the report", "err", err)
				return
			}
			fmt.Fprintln(stdout, "ready")
			return
		}
	}()
	logger.Info("restoreapp: running", "app", c.appID, "guarantee", c.guarantee.String(), "state_dir", c.stateDir)
	err = app.Run(ctx)
	stop()
	<-watched
	if err != nil {
		logger.Error("restoreapp: stopped", "err", err)
		return 1
	}
	return 0
}
