package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
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
	restore              bool // restore the state and report it (restoreLine)
}

func main() { os.Exit(realMain()) }

// startProfile starts a CPU profile into prefix.cpu.pprof; the returned
// func stops it and writes the allocations so far to prefix.allocs.pprof.
// An empty prefix profiles nothing.
func startProfile(prefix string) (func(), error) {
	if prefix == "" {
		return func() {}, nil
	}
	f, err := os.Create(prefix + ".cpu.pprof")
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		if a, err := os.Create(prefix + ".allocs.pprof"); err == nil {
			_ = pprof.Lookup("allocs").WriteTo(a, 0)
			a.Close()
		}
	}, nil
}

// convert writes <base>.json from the markdown at md, then (or else)
// <base>.png from the JSON at chartSrc; an empty path skips its step.
func convert(md, chartSrc string) int {
	if md != "" {
		out, err := jsonFromMarkdown(md)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
		fmt.Println("bench: wrote", out)
	}
	if chartSrc != "" {
		out, err := chartFrom(chartSrc)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
		fmt.Println("bench: wrote", out)
	}
	return 0
}

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
		restore   = flag.Bool("restore", true, "after each run of a stateful workload, start it again with an empty state directory and measure its restore")
		latRate   = flag.Int("latency-rate", 2000, "input records/s of the latency runs (0: no latency runs)")
		latDur    = flag.Duration("latency-duration", 10*time.Second, "how long each latency run produces its input")
		profDir   = flag.String("profile-dir", "", "where the Go children write CPU and alloc profiles (\"\": none)")
		logDir    = flag.String("log-dir", "", "where the children's logs are kept (\"\": not kept)")
		profile   = flag.String("profile", "", "internal: the child's profile path prefix")
		runSystem = flag.String("run-system", "", "internal: run one system as a child process")
		workload  = flag.String("workload", "", "internal: the child's workload")
		guarantee = flag.String("guarantee", "", "internal: the child's guarantee (alos or eos)")
		appID     = flag.String("app-id", "", "internal: the child's application id")
		stateDir  = flag.String("state-dir", "", "internal: the child's state directory")
		input     = flag.String("input", "", "internal: the child's input topic")
		table     = flag.String("table", "", "internal: the child's table topic")
		output    = flag.String("output", "", "internal: the child's output topic")
		restoring = flag.Bool("restoring", false, "internal: the child restores its state and reports the restore")
		chartSrc  = flag.String("chart-from", "", "re-render <base>.png from the summaries in a results <base>.json, running nothing")
		mdSrc     = flag.String("json-from-md", "", "read the tables of a results <base>.md back into <base>.json, running nothing")
	)
	flag.Parse()
	if *chartSrc != "" || *mdSrc != "" {
		return convert(*mdSrc, *chartSrc)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	if *runSystem != "" {
		a := childArgs{system: *runSystem, workload: *workload, eos: *guarantee == "eos", brokers: strings.Split(*brokers, ","),
			appID: *appID, stateDir: *stateDir, input: *input, table: *table, output: *output, commitInterval: *commit, restore: *restoring}
		stopProfile, err := startProfile(*profile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench child:", err)
			return 1
		}
		defer stopProfile()
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
		workloads: strings.Split(*wls, ","), outDir: *outDir, timeout: *timeout, note: *note, commitInterval: *commit,
		restore: *restore, latencyRate: *latRate, latencyDuration: *latDur, profileDir: *profDir, logDir: *logDir}
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
