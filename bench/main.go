package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/streamwork-go/streamwork/integration/kafkatest"
)

// childArgs are what a child run gets on its command line.
type childArgs struct {
	system, workload     string
	eos                  bool
	brokers              []string
	appID, stateDir      string
	input, table, output string
	commitInterval       time.Duration
}

func main() { os.Exit(realMain()) }

// realMain runs the child or the coordinator and returns the exit status,
// after its deferred stops ran.
func realMain() int {
	var (
		records   = flag.Int("records", 2_000_000, "input records")
		rounds    = flag.Int("rounds", 3, "rounds; each runs every workload with every system once")
		brokers   = flag.String("brokers", "", "bootstrap addresses of a running broker (default: start one through integration/kafkatest)")
		systems   = flag.String("systems", "streamwork,kafka-streams,raw", "systems to run, comma-separated")
		wls       = flag.String("workloads", strings.Join(workloads, ","), "workloads to run, comma-separated")
		outDir    = flag.String("out", "bench/results", "where the results go")
		timeout   = flag.Duration("run-timeout", 0, "longest one run may take (default: 2m plus 200µs a record)")
		note      = flag.String("note", "", "a note written into the results")
		commit    = flag.Duration("commit-interval", 0, "commit interval of every system (default: each system's own, 30s at-least-once and 100ms exactly-once for both libraries)")
		runSystem = flag.String("run-system", "", "internal: run one system as a child process")
		workload  = flag.String("workload", "", "internal: the child's workload")
		guarantee = flag.String("guarantee", "", "internal: the child's guarantee (alos or eos)")
		appID     = flag.String("app-id", "", "internal: the child's application id")
		stateDir  = flag.String("state-dir", "", "internal: the child's state directory")
		input     = flag.String("input", "", "internal: the child's input topic")
		table     = flag.String("table", "", "internal: the child's table topic")
		output    = flag.String("output", "", "internal: the child's output topic")
	)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	if *runSystem != "" {
		a := childArgs{system: *runSystem, workload: *workload, eos: *guarantee == "eos", brokers: strings.Split(*brokers, ","),
			appID: *appID, stateDir: *stateDir, input: *input, table: *table, output: *output, commitInterval: *commit}
		var err error
		switch a.system {
		case sysStreamwork:
			err = runStreamwork(ctx, a)
		case sysRaw:
			err = runRaw(ctx, a)
		default:
			err = fmt.Errorf("unknown system %q", a.system)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench child:", err)
			return 1
		}
		return 0
	}

	cfg := config{records: *records, rounds: *rounds, systems: strings.Split(*systems, ","),
		workloads: strings.Split(*wls, ","), outDir: *outDir, timeout: *timeout, note: *note, commitInterval: *commit}
	if cfg.timeout == 0 {
		cfg.timeout = 2*time.Minute + time.Duration(cfg.records)*200*time.Microsecond
	}
	if *brokers != "" {
		cfg.brokers = strings.Split(*brokers, ",")
	} else {
		b, stopBroker, err := kafkatest.Start()
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
		defer stopBroker()
		fmt.Printf("bench: broker Apache Kafka %s via %s at %s\n", b.Version, b.Provider, b.Addrs[0])
		cfg.brokers, cfg.brokerVersion = b.Addrs, b.Version
	}
	self, err := os.Executable()
	if err == nil {
		cfg.self, err = filepath.Abs(self)
	}
	if err == nil {
		err = run(ctx, cfg)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	return 0
}
