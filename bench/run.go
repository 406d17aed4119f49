package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The systems.
const (
	sysStreamwork = "streamwork"
	sysKS         = "kafka-streams"
	sysRaw        = "raw"
)

// config is the coordinator's.
type config struct {
	records, rounds    int
	systems, workloads []string
	brokers            []string
	brokerVersion      string
	outDir, note       string
	timeout            time.Duration
	commitInterval     time.Duration // 0: each system's default
	restore            bool          // measure the restore of stateful workloads
	latencyRate        int           // records/s of the latency runs; 0: none
	latencyDuration    time.Duration // how long the latency runs produce
	profileDir         string        // where Go children write CPU and alloc profiles; "": none
	logDir             string        // where the children's logs are kept; "": not kept
	self               string        // this binary, re-executed for child runs
	ksClasspath        string        // the Kafka Streams program's class path
}

// result is one verified run.
type result struct {
	workload, system string
	eos              bool
	round            int
	elapsed          time.Duration // process start to complete verified output
	steady           float64       // records/s from 10 % to 90 % of the input
	firstOutput      time.Duration
	cpu              time.Duration // user + system, from the child's rusage
	maxRSS           int64         // bytes
	outputs          int64         // output records read (read committed)
	changelog        int64         // changelog offsets written (transaction markers included)
	restored         int64         // changelog records restored into an empty state directory
	restoreTime      time.Duration // from the first store restoring to the last one done
}

func (r result) throughput(n int) float64 { return float64(n) / r.elapsed.Seconds() }

func guaranteeName(eos bool) string {
	if eos {
		return "exactly-once"
	}
	return "at-least-once"
}

// run loads the input and runs every workload with every system, rounds
// times, then writes the report.
func run(ctx context.Context, cfg config) error {
	// A short metadata age: each run's topics are listed right after it.
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.brokers...), kgo.ProducerLinger(5*time.Millisecond), kgo.MetadataMinAge(10*time.Millisecond),
		kgo.UnknownTopicRetries(-1))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if contains(cfg.systems, sysKS) {
		if cfg.ksClasspath, err = buildKS(ctx); err != nil {
			return err
		}
	}
	for _, d := range []string{cfg.profileDir, cfg.logDir} {
		if d != "" {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
	}
	ds := newDataset(cfg.records, time.Now())
	tag := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	input, table := tag+"-in", tag+"-table"
	if err := load(ctx, cl, adm, ds, input, table); err != nil {
		return err
	}
	want := map[string]expected{}
	for _, w := range cfg.workloads {
		want[w] = ds.expect(w)
	}
	var results []result
	n := 0
	for round := range cfg.rounds {
		for _, w := range cfg.workloads {
			for _, eos := range []bool{false, true} {
				for _, sys := range cfg.systems {
					if skip(sys, w) {
						continue
					}
					n++
					id := fmt.Sprintf("%s-%s-%s-%s-r%d", tag, strings.ToLower(w), sys, map[bool]string{false: "alos", true: "eos"}[eos], round)
					r, err := runOne(ctx, cfg, adm, ds, want[w], w, sys, eos, id, input, table)
					if err != nil {
						return fmt.Errorf("%s %s %s round %d: %w", w, sys, guaranteeName(eos), round+1, err)
					}
					r.round = round
					fmt.Printf("bench: %s %-13s %-13s round %d: %8.0f rec/s, steady %8.0f rec/s, %.2f CPU-s/M, %4d MiB, first output %.2fs, %d outputs, %d changelog, restored %d in %v\n",
						w, sys, guaranteeName(eos), round+1, r.throughput(ds.n), r.steady, r.cpu.Seconds()/float64(ds.n)*1e6,
						r.maxRSS>>20, r.firstOutput.Seconds(), r.outputs, r.changelog, r.restored, r.restoreTime.Round(time.Millisecond))
					results = append(results, r)
				}
			}
		}
	}
	var lats []latencyResult
	if cfg.latencyRate > 0 {
		for _, w := range cfg.workloads {
			for _, eos := range []bool{false, true} {
				for _, sys := range cfg.systems {
					if skip(sys, w) || !latencyRuns(w, eos) {
						continue
					}
					id := fmt.Sprintf("%s-lat-%s-%s-%s", tag, strings.ToLower(w), sys, map[bool]string{false: "alos", true: "eos"}[eos])
					lr, err := runLatency(ctx, cfg, adm, w, sys, eos, id, table)
					if err != nil {
						return fmt.Errorf("latency %s %s %s: %w", w, sys, guaranteeName(eos), err)
					}
					fmt.Printf("bench: latency %s %-13s %-13s at %d rec/s: p50 %v, p99 %v, max %v over %d records\n",
						w, sys, guaranteeName(eos), lr.rate, lr.p50, lr.p99, lr.max, lr.records)
					lats = append(lats, lr)
				}
			}
		}
	}
	return report(cfg, ds, results, lats)
}

// skip reports whether system sys leaves workload w out: the raw loop runs
// W1 only; Kafka Streams 4.3.1 does not run W3f, because its emit-final
// count emitted about a third of the closed windows here (20,000 records,
// with and without a record cache, windowed-aggregation emit interval 0),
// so its output never verifies.
func skip(sys, w string) bool {
	return (sys == sysRaw && w != w1) || (sys == sysKS && w == w3f)
}

// load creates the input and table topics and writes the dataset.
func load(ctx context.Context, cl *kgo.Client, adm *kadm.Client, ds dataset, input, table string) error {
	for _, t := range []string{input, table} {
		if err := createTopic(ctx, adm, t); err != nil {
			return err
		}
	}
	began := time.Now()
	var firstErr error
	errs := make(chan error, 1)
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			select {
			case errs <- err:
			default:
			}
		}
	}
	for i := range numKeys {
		k := fmt.Sprintf("k%06d", i)
		cl.Produce(ctx, &kgo.Record{Topic: table, Key: []byte(k), Value: []byte(tableValue(k)), Timestamp: time.UnixMilli(ds.base - windowMs)}, promise)
	}
	for i := range ds.n {
		cl.Produce(ctx, &kgo.Record{Topic: input, Key: []byte(ds.key(i)), Value: []byte(ds.value(i)), Timestamp: time.UnixMilli(ds.ts(i))}, promise)
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	select {
	case firstErr = <-errs:
		return fmt.Errorf("load the input: %w", firstErr)
	default:
	}
	fmt.Printf("bench: loaded %d input records and %d table rows in %v\n", ds.n, numKeys, time.Since(began).Round(time.Millisecond))
	return nil
}

func createTopic(ctx context.Context, adm *kadm.Client, t string) error {
	resp, err := adm.CreateTopic(ctx, partitions, 1, nil, t)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("create topic %s: %w", t, err)
	}
	// Wait until every partition has a leader, so the first produce to it
	// does not fail.
	deadline := time.Now().Add(30 * time.Second)
	for {
		d, err := adm.ListTopics(ctx, t)
		if err == nil && d.Error() == nil {
			ready := len(d[t].Partitions) == partitions
			for _, p := range d[t].Partitions {
				ready = ready && p.Err == nil && p.Leader >= 0
			}
			if ready {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("topic %s has no leaders after 30s (%v)", t, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// runOne runs one system on one workload in a child process until a
// read-committed consumer has verified its complete output, then stops it.
func runOne(ctx context.Context, cfg config, adm *kadm.Client, ds dataset, want expected, w, sys string, eos bool, id, input, table string) (result, error) {
	r := result{workload: w, system: sys, eos: eos}
	output := id + "-out"
	if err := createTopic(ctx, adm, output); err != nil {
		return r, err
	}
	stateDir, err := os.MkdirTemp("", "streamwork-bench-*")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(stateDir)
	cmd, logf, err := startChild(cfg, sys, w, eos, id, stateDir, input, table, output, false)
	if err != nil {
		return r, err
	}
	defer logf.Close()

	vctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	exited := make(chan error, 1)
	began := time.Now()
	go func() { exited <- cmd.Wait() }()
	vres := make(chan verified, 1)
	go func() { vres <- verify(vctx, cfg.brokers, output, w, ds, want, began) }()
	var v verified
	select {
	case v = <-vres:
	case err := <-exited:
		cancel()
		<-vres
		return r, fmt.Errorf("the child exited before its output was complete (%v); its log:\n%s", err, tail(logf.Name()))
	}
	peak := peakRSS(cmd.Process.Pid)
	stopChild(cmd, exited)
	if cfg.logDir != "" {
		if b, err := os.ReadFile(logf.Name()); err == nil {
			_ = os.WriteFile(filepath.Join(cfg.logDir, id+".log"), b, 0o644)
		}
	}
	if v.err != nil {
		return r, fmt.Errorf("%w; the child's log:\n%s", v.err, tail(logf.Name()))
	}
	r.elapsed, r.firstOutput, r.steady, r.outputs = v.done, v.first, v.steady, v.outputs
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		r.maxRSS = ru.Maxrss << 10 // KiB on Linux
	}
	if peak > 0 {
		r.maxRSS = peak
	}
	if r.changelog, err = changelogOffsets(ctx, adm, id); err != nil {
		return r, err
	}
	if cfg.restore && stateful(w) && sys != sysRaw {
		r.restored, r.restoreTime, err = restoreRun(ctx, cfg, sys, w, eos, id, input, table, output)
	}
	return r, err
}

// startChild starts sys on workload w in a child process writing its log to
// child.log in stateDir; restore asks it to report its restore
// (restoreLine).
func startChild(cfg config, sys, w string, eos bool, id, stateDir, input, table, output string, restore bool) (*exec.Cmd, *os.File, error) {
	var cmd *exec.Cmd
	switch sys {
	case sysKS:
		g := "at_least_once"
		if eos {
			g = "exactly_once_v2"
		}
		args := []string{"-cp", cfg.ksClasspath, "streamwork.bench.Main", w, g, strings.Join(cfg.brokers, ","), id, stateDir, input, table, output,
			fmt.Sprint(cfg.commitInterval.Milliseconds())}
		if restore {
			args = append(args, "restore")
		}
		cmd = exec.Command("java", args...)
	default:
		g := "alos"
		if eos {
			g = "eos"
		}
		cmd = exec.Command(cfg.self, "-run-system", sys, "-workload", w, "-guarantee", g, "-brokers", strings.Join(cfg.brokers, ","),
			"-app-id", id, "-state-dir", stateDir, "-input", input, "-table", table, "-output", output,
			"-commit-interval", cfg.commitInterval.String(), fmt.Sprintf("-restoring=%v", restore))
		if cfg.profileDir != "" && !restore {
			cmd.Args = append(cmd.Args, "-profile", filepath.Join(cfg.profileDir, fmt.Sprintf("%s-%s-%s", sys, w, guaranteeName(eos))))
		}
	}
	logf, err := os.Create(filepath.Join(stateDir, "child.log"))
	if err != nil {
		return nil, nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, nil, err
	}
	return cmd, logf, nil
}

// stopChild asks cmd to stop and waits for it (killing it after 30s).
func stopChild(cmd *exec.Cmd, exited <-chan error) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// restoreRun starts sys on workload w again, as application id, with an
// empty state directory and no new input, and waits for it to report
// (restoreLine) how many changelog records it restored and how long that
// took.
func restoreRun(ctx context.Context, cfg config, sys, w string, eos bool, id, input, table, output string) (int64, time.Duration, error) {
	stateDir, err := os.MkdirTemp("", "streamwork-bench-restore-*")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(stateDir)
	cmd, logf, err := startChild(cfg, sys, w, eos, id, stateDir, input, table, output, true)
	if err != nil {
		return 0, 0, err
	}
	defer logf.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer stopChild(cmd, exited)
	deadline := time.Now().Add(cfg.timeout)
	for {
		b, _ := os.ReadFile(logf.Name())
		for _, l := range strings.Split(string(b), "\n") {
			var n int64
			var secs float64
			if _, err := fmt.Sscanf(l, restoreLine, &n, &secs); err == nil {
				return n, time.Duration(secs * float64(time.Second)), nil
			}
		}
		select {
		case err := <-exited:
			exited <- err
			return 0, 0, fmt.Errorf("restore: the child exited (%v); its log:\n%s", err, tail(logf.Name()))
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return 0, 0, fmt.Errorf("restore: no report after %v; the child's log:\n%s", cfg.timeout, tail(logf.Name()))
		}
	}
}

// changelogOffsets sums the end offsets of the application's changelog
// topics.
func changelogOffsets(ctx context.Context, adm *kadm.Client, appID string) (int64, error) {
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		return 0, err
	}
	var names []string
	for _, t := range topics.Names() {
		if strings.HasPrefix(t, appID+"-") && strings.HasSuffix(t, "-changelog") {
			names = append(names, t)
		}
	}
	if len(names) == 0 {
		return 0, nil
	}
	ends, err := adm.ListEndOffsets(ctx, names...)
	if err != nil {
		return 0, err
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n, ends.Error()
}

// verified is what verify found.
type verified struct {
	done, first time.Duration
	steady      float64
	outputs     int64
	err         error
}

// verify reads output (read committed) until it holds exactly what want
// says: for W1 and W4 the count and hash sum of the outputs, for W2 and
// W3 each key's expected last value. It notes when the first output came
// and when outputs passed 10 % and 90 % of the input's event time.
func verify(ctx context.Context, brokers []string, output, w string, ds dataset, want expected, began time.Time) verified {
	var v verified
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(output),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		v.err = err
		return v
	}
	defer cl.Close()
	var (
		count   int
		sum     uint64
		latest  = map[string]int64{}
		matched int
		t10     time.Time
		t90     time.Time
		emitted = map[string]bool{} // W3f: the keys output
		bad     error
	)
	complete := func() bool {
		if want.final != nil {
			return matched == len(want.final)
		}
		return count == want.count && sum == want.sum
	}
	for !complete() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			switch {
			case want.final != nil:
				v.err = fmt.Errorf("output incomplete after %v: %d of %d keys at their final value (%d outputs)", time.Since(began).Round(time.Second), matched, len(want.final), v.outputs)
			default:
				v.err = fmt.Errorf("output incomplete after %v: %d outputs (want %d), hash sum %x (want %x)", time.Since(began).Round(time.Second), count, want.count, sum, want.sum)
			}
			return v
		}
		if err := fs.Err0(); err != nil && !errors.Is(err, context.Canceled) {
			v.err = err
			return v
		}
		now := time.Now()
		fs.EachRecord(func(r *kgo.Record) {
			if v.outputs == 0 {
				v.first = now.Sub(began)
			}
			v.outputs++
			p := ds.progress(r.Timestamp.UnixMilli())
			if t10.IsZero() && p >= 0.1 {
				t10 = now
			}
			if t90.IsZero() && p >= 0.9 {
				t90 = now
			}
			if want.final == nil {
				count++
				sum += hashKV(r.Key, r.Value)
				return
			}
			k := string(r.Key)
			if len(r.Value) != 8 {
				return
			}
			val := int64(binary.BigEndian.Uint64(r.Value))
			exp, ok := want.final[k]
			if want.exact {
				switch {
				case !ok && bad == nil:
					bad = fmt.Errorf("output for %s, a window that has not closed (value %d)", k, val)
				case emitted[k] && bad == nil:
					bad = fmt.Errorf("%s output twice", k)
				}
				emitted[k] = true
			}
			if !ok {
				return
			}
			was := latest[k] == exp
			latest[k] = val
			if is := val == exp; is != was {
				if is {
					matched++
				} else {
					matched--
				}
			}
		})
		if bad != nil {
			v.err = bad
			return v
		}
		if want.final == nil && count > want.count {
			v.err = fmt.Errorf("%d outputs, more than the %d expected", count, want.count)
			return v
		}
	}
	v.done = time.Since(began)
	if !t10.IsZero() && t90.After(t10) {
		v.steady = 0.8 * float64(ds.n) / t90.Sub(t10).Seconds()
	}
	return v
}

// buildKS compiles bench/ks with Maven (offline when its dependencies are
// cached) and returns the class path to run it with.
func buildKS(ctx context.Context) (string, error) {
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "ks")
	if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("the Kafka Streams program: %w", err)
	}
	args := []string{"-B", "-q", "compile", "dependency:build-classpath", "-Dmdep.outputFile=target/classpath.txt"}
	cmd := exec.CommandContext(ctx, "mvn", append([]string{"-o"}, args...)...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		cmd = exec.CommandContext(ctx, "mvn", args...)
		cmd.Dir = dir
		if out2, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("build bench/ks: %w\n%s\n%s", err, out, out2)
		}
	}
	cp, err := os.ReadFile(filepath.Join(dir, "target", "classpath.txt"))
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "target", "classes") + ":" + strings.TrimSpace(string(cp)), nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// tail returns the last lines of a child's log.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-30):], "\n")
}

// peakRSS returns the peak resident set size of the running process pid in
// bytes (VmHWM in /proc/<pid>/status), 0 where there is no such file. A
// child's ru_maxrss is no measure of it on Linux: the child starts as a
// vfork of this process, and exec carries this process's peak into the
// child's, so every child would show at least the parent's (which holds
// the verifying consumers' buffers).
func peakRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				if kb, err := strconv.ParseInt(f[0], 10, 64); err == nil {
					return kb << 10
				}
			}
		}
	}
	return 0
}
