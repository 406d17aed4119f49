// Command eosapp runs the ledger workload (integration/internal/ledger) as
// a Streamwork application, for the crash tests of the delivery
// guarantees: the tests run several of it as separate processes, kill them
// (SIGKILL), stop them (SIGSTOP) past their session timeout, restart them,
// and check the outputs against what they computed from the inputs.
//
// Usage:
//
//	eosapp -brokers host:port[,host:port] -app ID -input TOPIC -passthrough TOPIC
//	    -counts TOPIC -sums TOPIC -state-dir DIR [-groups 50]
//	    [-windows TOPIC -sessions TOPIC -late TOPIC] [-pairs TOPIC -ranked TOPIC]
//	    [-guarantee exactly-once|at-least-once|at-most-once] [-instance ID]
//	    [-workers 1] [-commit-interval 0] [-session-timeout 6s]
//	    [-transaction-timeout 0] [-standby-replicas 0] [-log-level info]
//
// Without -instance, an exactly-once App persists its instance id in the
// state directory, so a restart with the same -state-dir is the same
// instance (the same transactional ids); the other guarantees make a random
// id per run.
//
// It prints one line, "ready", to standard output when it processes its
// first record, and nothing else there; its logs go to standard error.
// SIGTERM or SIGINT shut it down cleanly and it exits 0; it exits 1 when
// the App fails and 2 on bad flags.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/streamwork-go/streamwork/examples/service"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/integration/internal/ledger"
	"github.com/streamwork-go/streamwork/kstream"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// config is what the flags say.
type config struct {
	brokers        []string
	appID          string
	topics         ledger.Topics
	groups         int
	stateDir       string
	guarantee      kstream.DeliveryGuarantee
	instance       string
	workers        int
	commitInterval time.Duration
	sessionTimeout time.Duration
	txnTimeout     time.Duration
	standbys       int
	logLevel       slog.Level
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var (
		c      config
		common service.Flags
	)
	fs := flag.NewFlagSet("eosapp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	common.Register(fs, service.WithGuarantee(kstream.ExactlyOnce))
	fs.StringVar(&c.appID, "app", "", "application id: the consumer group (required)")
	fs.StringVar(&c.topics.Input, "input", "", "input topic (required)")
	fs.StringVar(&c.topics.Passthrough, "passthrough", "", "pass-through output topic (required)")
	fs.StringVar(&c.topics.Counts, "counts", "", "counts output topic (required)")
	fs.StringVar(&c.topics.Sums, "sums", "", "sums output topic (required)")
	fs.StringVar(&c.topics.Windows, "windows", "", "windowed counts output topic (optional, with -sessions and -late)")
	fs.StringVar(&c.topics.Sessions, "sessions", "", "session counts output topic (optional)")
	fs.StringVar(&c.topics.Late, "late", "", "late records topic of the windowed counts (optional)")
	fs.StringVar(&c.topics.Pairs, "pairs", "", "stream-stream join output topic (optional, with -ranked)")
	fs.StringVar(&c.topics.Ranked, "ranked", "", "stream-table join output topic (optional)")
	fs.IntVar(&c.groups, "groups", 50, "number of user groups (the aggregation keys)")
	fs.StringVar(&c.stateDir, "state-dir", "", "state directory of this instance (required)")
	fs.StringVar(&c.instance, "instance", "", "instance id (default: persisted in the state directory under exactly-once, else random)")
	fs.IntVar(&c.workers, "workers", 1, "workers of this instance")
	fs.DurationVar(&c.commitInterval, "commit-interval", 0, "commit interval (0: the guarantee's default)")
	fs.DurationVar(&c.sessionTimeout, "session-timeout", 6*time.Second,
		"group session timeout: how soon the group evicts a killed or stopped run (6s is the broker's default minimum)")
	fs.DurationVar(&c.txnTimeout, "transaction-timeout", 0, "transaction timeout under exactly-once (0: the runtime's default)")
	fs.IntVar(&c.standbys, "standby-replicas", 0, "standby replicas of each stateful task on other instances")
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
	case c.topics.Input == "" || c.topics.Passthrough == "" || c.topics.Counts == "" || c.topics.Sums == "":
		return c, errors.New("-input, -passthrough, -counts and -sums are required")
	case c.stateDir == "":
		return c, errors.New("-state-dir is required")
	case c.groups < 1:
		return c, fmt.Errorf("-groups %d must be positive", c.groups)
	case c.standbys < 0:
		return c, fmt.Errorf("-standby-replicas %d must not be negative", c.standbys)
	}
	return c, nil
}

func run(args []string, stdout, stderr io.Writer) int {
	c, err := parseFlags(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "eosapp:", err)
		}
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: c.logLevel})).With("pid", os.Getpid())

	var ready sync.Once
	topo, err := ledger.Topology(c.topics, c.groups, func() {
		ready.Do(func() { fmt.Fprintln(stdout, "ready") })
	})
	if err != nil {
		fmt.Fprintln(stderr, "eosapp:", err)
		return 1
	}
	clientOpts := []kgo.Opt{kgo.SessionTimeout(c.sessionTimeout), kgo.HeartbeatInterval(c.sessionTimeout / 10)}
	if c.txnTimeout > 0 {
		clientOpts = append(clientOpts, kgo.TransactionTimeout(c.txnTimeout))
	}
	opts := []kstream.Opt{
		kstream.ApplicationID(c.appID),
		kstream.Brokers(c.brokers...),
		kstream.Guarantee(c.guarantee),
		kstream.StateDir(c.stateDir),
		kstream.Workers(c.workers),
		kstream.Logger(logger),
		kstream.ClientOpts(clientOpts...),
		kstream.StandbyReplicas(c.standbys),
	}
	if c.commitInterval > 0 {
		opts = append(opts, kstream.CommitInterval(c.commitInterval))
	}
	if c.instance != "" {
		opts = append(opts, kstream.InstanceID(c.instance))
	}
	app, err := kstream.New(topo, opts...)
	if err != nil {
		fmt.Fprintln(stderr, "eosapp:", err)
		return 2
	}

	ctx, stop := service.SignalContext()
	defer stop()
	logger.Info("eosapp: running", "app", c.appID, "guarantee", c.guarantee.String(), "state_dir", c.stateDir)
	if err := app.Run(ctx); err != nil {
		logger.Error("eosapp: stopped", "err", err)
		return 1
	}
	m := app.Metrics()
	logger.Info("eosapp: shut down cleanly", "processed", m.RecordsProcessed, "produced", m.RecordsProduced, "commits", m.Commits)
	return 0
}
