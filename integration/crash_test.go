package integration

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/integration/kafkatest"
)

// buildTestProgram builds the program internal/<name> into a temporary
// directory of t and returns its path; with -race when the tests are.
func buildTestProgram(ctx context.Context, t testing.TB, name string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "./internal/"+name)
	began := time.Now()
	out, err := exec.CommandContext(ctx, "go", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("built %s in %v", name, time.Since(began).Round(time.Millisecond))
	return bin
}

// signal sends sig to the process, failing t if it cannot.
func (p *crashProc) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("send %v to %s: %v", sig, p.name, err)
	}
}

// buildCrashApp builds the crashapp program (internal/crashapp) into a
// temporary directory of t and returns its path (see buildTestProgram).
func buildCrashApp(ctx context.Context, t testing.TB) string {
	t.Helper()
	return buildTestProgram(ctx, t, "crashapp")
}

// crashProc is one run of crashapp.
type crashProc struct {
	name    string
	cmd     *exec.Cmd
	logPath string        // its standard error
	ready   chan struct{} // closed when it printed "ready"
	exited  chan struct{} // closed when it exited
	waitErr error         // cmd.Wait's result, read after exited
}

// startCrashApp runs bin with args, its standard error going to a file in
// t's temporary directory (logged when t fails). The process is killed, if
// it still runs, when ctx or t ends.
func startCrashApp(ctx context.Context, t testing.TB, bin, name string, args ...string) *crashProc {
	t.Helper()
	p := &crashProc{
		name:    name,
		logPath: filepath.Join(t.TempDir(), name+".log"),
		ready:   make(chan struct{}),
		exited:  make(chan struct{}),
	}
	logFile, err := os.Create(p.logPath)
	if err != nil {
		t.Fatalf("create the log of %s: %v", name, err)
	}
	p.cmd = exec.CommandContext(ctx, bin, args...)
	p.cmd.Stderr = logFile
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("stdout of %s: %v", name, err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		defer close(p.exited)
		sc := bufio.NewScanner(stdout)
		readyOnce := false
		for sc.Scan() {
			if sc.Text() == "ready" && !readyOnce {
				readyOnce = true
				close(p.ready)
			}
		}
		// Wait only after the pipe is drained, as os/exec requires.
		p.waitErr = p.cmd.Wait()
		logFile.Close()
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("standard error of %s:\n%s", name, tailFile(p.logPath, 40))
		}
	})
	return p
}

// running fails t if the process exited.
func (p *crashProc) running(t testing.TB) {
	t.Helper()
	select {
	case <-p.exited:
		t.Fatalf("%s exited on its own: %v\n%s", p.name, p.waitErr, tailFile(p.logPath, 40))
	default:
	}
}

// waitReady waits until the process printed "ready".
func (p *crashProc) waitReady(ctx context.Context, t testing.TB) {
	t.Helper()
	select {
	case <-p.ready:
	case <-p.exited:
		t.Fatalf("%s exited before it was ready: %v\n%s", p.name, p.waitErr, tailFile(p.logPath, 40))
	case <-ctx.Done():
		t.Fatalf("%s was not ready in time: %v", p.name, ctx.Err())
	}
}

// kill sends SIGKILL (no shutdown of any kind) and waits until the
// process is gone.
func (p *crashProc) kill(ctx context.Context, t testing.TB) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill %s: %v", p.name, err)
	}
	p.waitExit(ctx, t)
	var ee *exec.ExitError
	if !errors.As(p.waitErr, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("%s: after SIGKILL, Wait returned %v, want death by SIGKILL", p.name, p.waitErr)
	}
}

// terminate sends SIGTERM, which makes crashapp shut down cleanly, and
// fails t unless it exits with status 0.
func (p *crashProc) terminate(ctx context.Context, t testing.TB) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("terminate %s: %v", p.name, err)
	}
	p.waitExit(ctx, t)
	if p.waitErr != nil {
		t.Fatalf("%s: after SIGTERM, exited with %v, want status 0 (a clean shutdown)\n%s", p.name, p.waitErr, tailFile(p.logPath, 40))
	}
}

func (p *crashProc) waitExit(ctx context.Context, t testing.TB) {
	t.Helper()
	select {
	case <-p.exited:
	case <-ctx.Done():
		t.Fatalf("%s did not exit in time: %v", p.name, ctx.Err())
	}
}

// tailFile returns the last n lines of the file at path.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// crashOutcome is what a crash run produced: per input record, the tags
// of the runs that wrote an output for it.
type crashOutcome struct {
	n          int
	outputs    [][]string // by input index: the tag of each output
	unexpected []string   // output records that match no input
}

func (o crashOutcome) lost() []int {
	var idx []int
	for i, tags := range o.outputs {
		if len(tags) == 0 {
			idx = append(idx, i)
		}
	}
	return idx
}

func (o crashOutcome) duplicated() []int {
	var idx []int
	for i, tags := range o.outputs {
		if len(tags) > 1 {
			idx = append(idx, i)
		}
	}
	return idx
}

// crashScenario runs crashapp with the given guarantee through a crash:
//
//  1. 4,000 of the n = 20,000 input records (keys key-00..key-39, over 4
//     partitions, values v00000.., unique) are written; a producer writes
//     the rest in paced batches, holding back the records from index
//     holdAt on until step 3.
//  2. Run "run1" starts and, once at least 2,000 outputs are there, is
//     killed with SIGKILL.
//  3. The held-back input is released and run "run2" (the same instance
//     id and group) starts. When the group's committed offsets reach the
//     end of the input, run2 gets SIGTERM and must shut down cleanly.
//
// It checks what holds under every guarantee: each input from holdAt on
// (written after the crash) has exactly one output, by run2; every output
// matches an input; the group committed the whole input. It returns the
// outputs for the guarantee's own checks.
func crashScenario(t *testing.T, guarantee string) (o crashOutcome, holdAt int) {
	b := kafkatest.Require(t)
	ctx := testContext(t)
	const (
		n          = 20000
		preloaded  = 4000
		keys       = 40
		partitions = 4
		killAfter  = 2000
	)
	holdAt = 12000
	bin := buildCrashApp(ctx, t)
	in := newTopic(t, b, "in", partitions)
	out := newTopic(t, b, "out", partitions)
	group := kafkatest.UniqueName(t, "app")

	inputs := make([]*kgo.Record, n)
	for i := range inputs {
		k := i % keys
		inputs[i] = &kgo.Record{
			Topic: in, Partition: int32(k % partitions),
			Key: []byte(dagKey(k)), Value: fmt.Appendf(nil, "v%05d", i),
		}
	}
	cl := producer(t, b)
	produce(ctx, t, cl, inputs[:preloaded])

	args := func(tag string) []string {
		return []string{
			"-brokers", strings.Join(b.Addrs, ","), "-app", group, "-input", in, "-output", out,
			"-guarantee", guarantee, "-instance", "crash-1", "-tag", tag,
			"-commit-interval", "100ms", "-rate", "10000",
		}
	}
	run1 := startCrashApp(ctx, t, bin, "run1", args("run1")...)
	flow := startFlow(t, cl, inputs[preloaded:], 200, 20*time.Millisecond, holdAt-preloaded)
	run1.waitReady(ctx, t)

	rd := newReader(t, b, out)
	rd.readUntil(ctx, fmt.Sprintf("%d outputs of run1", killAfter), func() bool {
		run1.running(t)
		flow.check(t)
		return rd.count(out) >= killAfter
	})
	run1.kill(ctx, t)
	killedAt := rd.count(out)
	close(flow.release)

	run2 := startCrashApp(ctx, t, bin, "run2", args("run2")...)
	waitFor(ctx, t, "the whole input to be written", func() bool {
		flow.check(t)
		select {
		case <-flow.done:
			return true
		default:
			return false
		}
	})
	adm := b.Admin(t)
	end := lastStableOffsets(ctx, t, adm, in)[in]
	waitFor(ctx, t, "the group's committed offsets to reach the end of the input", func() bool {
		run2.running(t)
		got := committedOffsets(ctx, t, adm, group, in)
		for p, e := range end {
			if got[p] < e {
				return false
			}
		}
		return true
	})
	run2.terminate(ctx, t)
	rd.readToEnd(ctx)
	requireCommittedToEnd(ctx, t, adm, group, in)

	o = crashOutcome{n: n, outputs: make([][]string, n)}
	for _, r := range rd.records(out) {
		v, tag, ok := strings.Cut(string(r.Value), "|")
		i, err := strconv.Atoi(strings.TrimPrefix(v, "v"))
		if !ok || err != nil || !strings.HasPrefix(v, "v") || i < 0 || i >= n || string(r.Key) != dagKey(i%keys) {
			o.unexpected = append(o.unexpected, recString(r))
			continue
		}
		o.outputs[i] = append(o.outputs[i], tag)
	}
	byTag := map[string]int{}
	for _, tags := range o.outputs {
		for _, tag := range tags {
			byTag[tag]++
		}
	}
	t.Logf("%s: %d inputs; %d outputs were there when run1 was killed; outputs by run: %v; %d inputs lost, %d written more than once",
		guarantee, n, killedAt, byTag, len(o.lost()), len(o.duplicated()))

	if len(o.unexpected) > 0 {
		t.Errorf("%d outputs match no input, first: %v", len(o.unexpected), firstN(o.unexpected, 3))
	}
	for i := holdAt; i < n; i++ {
		if tags := o.outputs[i]; len(tags) != 1 || tags[0] != "run2" {
			t.Errorf("input %d, written after the crash, has outputs by %v, want exactly one by run2", i, tags)
			break
		}
	}
	return o, holdAt
}

// TestAtLeastOnceLosesNothingAcrossCrash kills an at-least-once
// application mid-stream (SIGKILL) and restarts it: every input record has
// an output; some may have more than one (the records processed after the
// last commit before the crash), which are counted and reported.
func TestAtLeastOnceLosesNothingAcrossCrash(t *testing.T) {
	o, _ := crashScenario(t, "at-least-once")
	if lost := o.lost(); len(lost) > 0 {
		t.Errorf("%d inputs have no output under at-least-once, first: %v", len(lost), firstN(lost, 10))
	}
}
