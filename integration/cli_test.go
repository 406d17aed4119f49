package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/integration/kafkatest"
	"github.com/streamwork-go/streamwork/kstream"
)

// cliBinary builds cmd/streamwork into a directory of t and returns its
// path.
func cliBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "streamwork")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/streamwork")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the CLI: %v\n%s", err, out)
	}
	return bin
}

// cli runs the CLI binary with args and returns its exit code, stdout and
// stderr.
func cli(ctx context.Context, t *testing.T, bin string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), stdout.String(), stderr.String()
	default:
		t.Fatalf("run the CLI %q: %v", args, err)
		return -1, "", ""
	}
}

// statusRows returns the rows of the table of the status output whose
// header starts with first, split into fields.
func statusRows(out, first string) [][]string {
	var rows [][]string
	in := false
	for _, l := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(l, first+" "):
			in = true
		case in && strings.TrimSpace(l) == "":
			return rows
		case in:
			rows = append(rows, strings.Fields(l))
		}
	}
	return rows
}

// The word count runs as two instances; status shows exactly their members
// and tasks and lag 0 once they caught up; reset refuses while they run
// and names them; after they stop it resets the input to its start,
// deletes exactly the internal topics and the instances' state, and a
// rerun counts the same words again from scratch.
func TestCLIStatusAndReset(t *testing.T) {
	b := kafkatest.Require(t)
	ctx := testContext(t)
	bin := cliBinary(t)
	brokers := strings.Join(b.Addrs, ",")
	in, out, out2 := newTopic(t, b, "cli-lines", 4), newTopic(t, b, "cli-counts", 4), newTopic(t, b, "cli-counts2", 4)
	appID := kafkatest.UniqueName(t, "cli")
	repart, changelog := appID+"-"+wcRepartition+"-repartition", appID+"-"+wcStore+"-changelog"
	deleteTopicsAtEnd(t, b, repart, changelog)
	want := make(map[string]int64)
	lines, _ := wordCorpus(7, 400, 50, want)
	recs := lineRecords(in, lines, 0, 4)
	for i, r := range recs {
		r.Timestamp = time.Now().Add(-2 * time.Hour).Add(time.Duration(i) * time.Millisecond)
	}
	produce(ctx, t, producer(t, b), recs)

	topo := wordCountTopology(t, in, out)
	topoFile := filepath.Join(t.TempDir(), "topology.json")
	js, err := json.Marshal(topo.Describe())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(topoFile, js, 0o644); err != nil {
		t.Fatal(err)
	}
	dirs := map[string]string{"a": t.TempDir(), "b": t.TempDir()}
	start := func(topo *kstream.Topology) []*runningApp {
		var apps []*runningApp
		for _, id := range []string{"a", "b"} {
			apps = append(apps, startApp(t, b, "cli-"+id, topo, kstream.ApplicationID(appID), kstream.InstanceID(id),
				kstream.StateDir(dirs[id]), kstream.CommitInterval(wcCommit)))
		}
		return apps
	}
	apps := start(topo)
	newLastCounts(newReader(t, b, out), out).waitCounts(ctx, t, want, apps...)
	waitAssigned(ctx, t, 8, apps...)
	adm := kadm.NewClient(b.Client(t, kgo.MetadataMinAge(checkEvery)))
	waitFor(ctx, t, "the group stable with no lag", func() bool {
		d, err := kstream.DescribeApplication(ctx, adm, appID)
		if err != nil || d.State != "Stable" || len(d.Members) != 2 || len(d.Partitions) != 8 {
			return false
		}
		for _, p := range d.Partitions {
			if p.Lag != 0 {
				return false
			}
		}
		return true
	}, apps...)

	// status: the members with exactly the tasks each App runs, and every
	// input partition (4 of the input, 4 of the repartition topic) at lag 0.
	code, stdout, stderr := cli(ctx, t, bin, "status", "-brokers", brokers, "-app", appID, "-topology", topoFile)
	if code != 0 {
		t.Fatalf("status: exit %d, stderr %s", code, stderr)
	}
	if first := strings.SplitN(stdout, "\n", 2)[0]; first != fmt.Sprintf("application %s: group Stable, 2 members, total lag 0", appID) {
		t.Errorf("status header %q", first)
	}
	owner := make(map[string]string) // "topic/partition" -> instance
	members := statusRows(stdout, "INSTANCE")
	if len(members) != 2 {
		t.Fatalf("status members %v\n%s", members, stdout)
	}
	for i, a := range apps {
		id := []string{"a", "b"}[i]
		var tasks []string
		for _, tk := range a.Metrics().Tasks {
			tasks = append(tasks, tk.String())
			owner[fmt.Sprintf("%s/%d", []string{in, repart}[tk.Subtopology], tk.Partition)] = id
		}
		row := members[i]
		if row[0] != id || row[1] != "0" || row[2] != strings.Join(tasks, ",") {
			t.Errorf("status member row %v, want instance %s worker 0 tasks %s", row, id, strings.Join(tasks, ","))
		}
	}
	ends := lastStableOffsets(ctx, t, adm, in, repart)
	var wantParts [][]string
	for _, tp := range slices.Sorted(slices.Values([]string{in, repart})) {
		for p := range int32(4) {
			e := fmt.Sprint(ends[tp][p])
			wantParts = append(wantParts, []string{tp, fmt.Sprint(p), e, e, "0", owner[fmt.Sprintf("%s/%d", tp, p)]})
		}
	}
	if got := statusRows(stdout, "TOPIC"); fmt.Sprint(got) != fmt.Sprint(wantParts) {
		t.Errorf("status partitions:\n got %v\nwant %v\n%s", got, wantParts, stdout)
	}

	// reset refuses while the App runs, naming its members.
	code, _, stderr = cli(ctx, t, bin, "reset", "-brokers", brokers, "-app", appID, "-input", in)
	if code != 1 || !strings.Contains(stderr, "active members") ||
		!strings.Contains(stderr, "instance a worker 0") || !strings.Contains(stderr, "instance b worker 0") {
		t.Errorf("reset while running: exit %d, stderr %q", code, stderr)
	}
	for _, a := range apps {
		if err := a.stop(t); err != nil {
			t.Fatal(err)
		}
	}
	committed := committedOffsets(ctx, t, adm, appID, in)

	// reset: offsets to the start, the two internal topics, a's state.
	code, stdout, stderr = cli(ctx, t, bin, "reset", "-brokers", brokers, "-app", appID, "-input", in, "-state-dir", dirs["a"])
	if code != 0 {
		t.Fatalf("reset: exit %d, stderr %s", code, stderr)
	}
	var wantOut strings.Builder
	for p := range int32(4) {
		fmt.Fprintf(&wantOut, "reset offset %s/%d: %d -> 0\n", in, p, committed[p])
	}
	fmt.Fprintf(&wantOut, "delete topic %s\ndelete topic %s\nremove state directory %s\n",
		changelog, repart, filepath.Join(dirs["a"], appID))
	if stdout != wantOut.String() {
		t.Errorf("reset output:\n got %q\nwant %q", stdout, wantOut.String())
	}
	waitFor(ctx, t, "the internal topics deleted", func() bool {
		td, err := adm.ListTopics(ctx)
		return err == nil && !td.Has(repart) && !td.Has(changelog) && td.Has(in) && td.Has(out)
	})
	for p, o := range committedOffsets(ctx, t, adm, appID, in) {
		if o != 0 {
			t.Errorf("after reset %s/%d committed at %d, want 0", in, p, o)
		}
	}
	if got := committedOffsets(ctx, t, adm, appID, repart); len(got) != 0 {
		t.Errorf("after reset the group keeps offsets of %s: %v", repart, got)
	}
	// b's state: offsets are already at the start; nothing else to delete.
	code, stdout, stderr = cli(ctx, t, bin, "reset", "-brokers", brokers, "-app", appID, "-state-dir", dirs["b"])
	if want := fmt.Sprintf("remove state directory %s\n", filepath.Join(dirs["b"], appID)); code != 0 || stdout != want {
		t.Errorf("reset of b's state: exit %d, stdout %q (want %q), stderr %q", code, stdout, want, stderr)
	}
	for _, dir := range dirs {
		entries, err := os.ReadDir(filepath.Join(dir, appID))
		if err != nil || len(entries) != 1 || entries[0].Name() != ".lock" {
			t.Errorf("state directory %s after reset: %v %v", dir, entries, err)
		}
	}

	// The rerun counts every word again from scratch (into a new output
	// topic): the same counts, not doubled.
	apps = start(wordCountTopology(t, in, out2))
	newLastCounts(newReader(t, b, out2), out2).waitCounts(ctx, t, want, apps...)
	for _, a := range apps {
		if err := a.stop(t); err != nil {
			t.Fatal(err)
		}
	}
}

// reset -to-time sets each partition to its first offset at or after the
// time, or its end when it has none; -dry-run changes nothing.
func TestCLIResetToTime(t *testing.T) {
	b := kafkatest.Require(t)
	ctx := testContext(t)
	bin := cliBinary(t)
	brokers := strings.Join(b.Addrs, ",")
	in := newTopic(t, b, "cli-time", 2)
	appID := kafkatest.UniqueName(t, "cli-time")
	base := time.Now().Add(-3 * time.Hour).Truncate(time.Second)
	var recs []*kgo.Record
	for i := range 10 { // partition 0: a record a minute
		recs = append(recs, &kgo.Record{Topic: in, Partition: 0, Value: []byte("x"), Timestamp: base.Add(time.Duration(i) * time.Minute)})
	}
	for i := range 3 { // partition 1: all before the reset time
		recs = append(recs, &kgo.Record{Topic: in, Partition: 1, Value: []byte("x"), Timestamp: base.Add(-time.Duration(i+1) * time.Hour)})
	}
	produce(ctx, t, producer(t, b), recs)
	adm := b.Admin(t)
	offs := make(kadm.Offsets)
	offs.Add(kadm.Offset{Topic: in, Partition: 0, At: 10, LeaderEpoch: -1})
	offs.Add(kadm.Offset{Topic: in, Partition: 1, At: 1, LeaderEpoch: -1})
	if r, err := adm.CommitOffsets(ctx, appID, offs); err != nil || r.Error() != nil {
		t.Fatalf("commit: %v %v", err, r.Error())
	}
	to := base.Add(4*time.Minute - time.Second).Format(time.RFC3339)
	args := []string{"reset", "-brokers", brokers, "-app", appID, "-input", in, "-to-time", to}
	code, stdout, stderr := cli(ctx, t, bin, append(args, "-dry-run")...)
	if want := fmt.Sprintf("would reset offset %s/0: 10 -> 4\nwould reset offset %s/1: 1 -> 3\n", in, in); code != 0 || stdout != want {
		t.Errorf("dry run: exit %d, stdout %q (want %q), stderr %q", code, stdout, want, stderr)
	}
	if got := committedOffsets(ctx, t, adm, appID, in); got[0] != 10 || got[1] != 1 {
		t.Errorf("after the dry run: committed %v, want 0:10 1:1", got)
	}
	code, stdout, stderr = cli(ctx, t, bin, args...)
	if want := fmt.Sprintf("reset offset %s/0: 10 -> 4\nreset offset %s/1: 1 -> 3\n", in, in); code != 0 || stdout != want {
		t.Errorf("reset: exit %d, stdout %q (want %q), stderr %q", code, stdout, want, stderr)
	}
	if got := committedOffsets(ctx, t, adm, appID, in); got[0] != 4 || got[1] != 3 {
		t.Errorf("after the reset: committed %v, want 0:4 1:3", got)
	}
	// An input that does not exist is an error, and changes nothing.
	code, _, stderr = cli(ctx, t, bin, "reset", "-brokers", brokers, "-app", appID, "-input", in+"-none")
	if code != 1 || !strings.Contains(stderr, in+"-none") {
		t.Errorf("reset of a missing topic: exit %d, stderr %q", code, stderr)
	}
}

// lineWaiter collects a process's output and lets a test wait for a line.
type lineWaiter struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func (w *lineWaiter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	defer func() {
		select {
		case w.changed <- struct{}{}:
		default:
		}
	}()
	return w.buf.Write(p)
}

func (w *lineWaiter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// wait returns the rest of the first line starting with prefix.
func (w *lineWaiter) wait(ctx context.Context, t *testing.T, prefix string) string {
	t.Helper()
	for {
		for _, l := range strings.Split(w.String(), "\n") {
			if rest, ok := strings.CutPrefix(l, prefix); ok {
				return rest
			}
		}
		select {
		case <-w.changed:
		case <-ctx.Done():
			t.Fatalf("no line %q in %q", prefix, w.String())
		}
	}
}

// The broker command: a client produces and consumes through it, SIGINT
// stops it (exit 0), and a broker started again on its data directory
// still has the record.
func TestCLIBroker(t *testing.T) {
	ctx := testContext(t)
	bin := cliBinary(t)
	dir := t.TempDir()
	for round := range 2 {
		out := &lineWaiter{changed: make(chan struct{}, 1)}
		cmd := exec.Command(bin, "broker", "-port", "0", "-data-dir", dir)
		cmd.Stdout, cmd.Stderr = out, io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		addr := out.wait(ctx, t, "broker listening on ")
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("dev"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.AllowAutoTopicCreation())
		if err != nil {
			t.Fatal(err)
		}
		if round == 0 {
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "dev", Value: []byte("hello")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		var got []string
		for len(got) < 1 && ctx.Err() == nil {
			for _, r := range cl.PollFetches(ctx).Records() {
				got = append(got, string(r.Value))
			}
		}
		cl.Close()
		if fmt.Sprint(got) != "[hello]" {
			t.Fatalf("round %d: consumed %q, want [hello]", round, got)
		}
		if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-exited:
			if err != nil || !strings.HasSuffix(out.String(), "broker stopped\n") {
				t.Fatalf("round %d: broker exited with %v, output %q", round, err, out.String())
			}
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			t.Fatalf("round %d: the broker did not stop on SIGINT", round)
		}
	}
}
