package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/integration/kafkatest"
	"github.com/streamwork-go/streamwork/kstream"
)

const (
	// waitTimeout bounds every wait of a runtime test: for output, for a
	// condition, for an App or a process to stop.
	waitTimeout = 90 * time.Second
	// testTimeout bounds a whole runtime test (see testContext).
	testTimeout = 2 * time.Minute
	// checkEvery is how often waitFor re-evaluates its condition.
	checkEvery = 20 * time.Millisecond
	// testHeartbeat is the group heartbeat of the test Apps: far below
	// kgo's 3s default, so rebalances (a member joining or leaving) settle
	// in well under a second.
	testHeartbeat = 200 * time.Millisecond
	// appLogEnv names the environment variable that sets the level of the
	// Apps' logs, which go to t.Log: debug, info, warn (the default) or
	// error.
	appLogEnv = "STREAMWORK_APP_LOG"
)

// newTopic creates a uniquely named topic with the given partitions and
// returns its name once the broker's metadata shows every partition with a
// leader: CreateTopic returns when the controller took the topic, a moment
// before the metadata every client (and App.Run's topic check) reads has
// it. The topic is deleted when t ends.
func newTopic(t testing.TB, b *kafkatest.Broker, prefix string, partitions int32) string {
	t.Helper()
	name := kafkatest.UniqueName(t, prefix)
	b.CreateTopic(t, name, partitions, nil)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	// kadm answers from metadata it cached up to MetadataMinAge (5s by
	// default) ago: a short age makes each try ask the broker.
	adm := kadm.NewClient(b.Client(t, kgo.MetadataMinAge(checkEvery)))
	err := retry(ctx, func() error {
		details, err := adm.ListTopics(ctx, name)
		if err != nil {
			return err
		}
		d, ok := details[name]
		if !ok || d.Err != nil || len(d.Partitions) != int(partitions) {
			return kerr.UnknownTopicOrPartition
		}
		for _, p := range d.Partitions {
			if p.Err != nil || p.Leader < 0 {
				return kerr.LeaderNotAvailable
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("topic %s was created but its metadata is not complete: %v", name, err)
	}
	return name
}

// producer returns a client that writes every record to the partition the
// record names (Partition must be set), so tests know where each input
// record is and, since a partition keeps the order of one producer's
// writes, at which offset.
func producer(t testing.TB, b *kafkatest.Broker) *kgo.Client {
	t.Helper()
	return b.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
}

// produce writes recs and waits until Kafka acknowledged all of them. On
// return each record carries its offset.
func produce(ctx context.Context, t testing.TB, cl *kgo.Client, recs []*kgo.Record) {
	t.Helper()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce %d records: %v", len(recs), err)
	}
}

// reader reads topics from their start with read_committed isolation and
// keeps every record it read, by topic, in the order each partition gave
// them.
type reader struct {
	t      testing.TB
	cl     *kgo.Client
	adm    *kadm.Client
	topics []string
	recs   map[string][]*kgo.Record
	// next is, per topic and partition, the offset after the last record
	// (data or control) read.
	next map[string]map[int32]int64
	// detail, when set, adds to the message of a read that gave up.
	detail func() string
	// b is the broker; progress is when the reader last got a record, and
	// reopened counts the times it replaced a stalled client.
	b        *kafkatest.Broker
	progress time.Time
	reopened int
}

func newReader(t testing.TB, b *kafkatest.Broker, topics ...string) *reader {
	t.Helper()
	r := &reader{
		t: t, adm: b.Admin(t), topics: topics, b: b, progress: time.Now(),
		recs: make(map[string][]*kgo.Record),
		next: make(map[string]map[int32]int64),
	}
	// Topics that exist now are read by explicit partitions: a direct
	// consumer of a whole topic was seen to miss one partition of a topic
	// just made for minutes (a 4-partition output read without its
	// partition 2 while the App had written everything). Topics that do
	// not exist yet are read by name.
	opts := []kgo.Opt{
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(), // so that reaching the end is observable
		kgo.MetadataMinAge(50 * time.Millisecond),
		kgo.MetadataMaxAge(time.Second),
		// Seen in full-suite runs: one partition of an output topic not
		// fetched for minutes while the broker held its records (end
		// offset 123, the reader's position never set); full fetch
		// requests rule out a stale incremental fetch session.
		kgo.DisableFetchSessions(),
	}
	parts, byName := map[string]map[int32]kgo.Offset{}, []string(nil)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	details, err := r.adm.ListTopics(ctx, topics...)
	for _, tp := range topics {
		d, ok := details[tp]
		if err != nil || !ok || d.Err != nil || len(d.Partitions) == 0 {
			byName = append(byName, tp)
			continue
		}
		parts[tp] = map[int32]kgo.Offset{}
		for p := range d.Partitions {
			// Offset 0, not AtStart: no ListOffsets round trip before the
			// first fetch (the failures above never got a position for the
			// missing partition). A purged start resets to the log start
			// through ConsumeResetOffset.
			parts[tp][p] = kgo.NewOffset().At(0)
		}
	}
	if len(parts) > 0 {
		opts = append(opts, kgo.ConsumePartitions(parts))
	}
	if len(byName) > 0 {
		opts = append(opts, kgo.ConsumeTopics(byName...))
	}
	r.cl = b.Client(t, opts...)
	return r
}

// records returns the data records of topic read so far.
func (r *reader) records(topic string) []*kgo.Record { return r.recs[topic] }

// count returns how many data records of topic were read so far.
func (r *reader) count(topic string) int { return len(r.recs[topic]) }

// poll reads one batch of fetches, waiting at most a quarter second.
func (r *reader) poll(ctx context.Context) {
	r.t.Helper()
	pollCtx, cancel := context.WithTimeout(ctx, 250*time.Millisecond)
	defer cancel()
	fs := r.cl.PollFetches(pollCtx)
	for _, fe := range fs.Errors() {
		if errors.Is(fe.Err, context.DeadlineExceeded) || errors.Is(fe.Err, context.Canceled) {
			continue
		}
		r.t.Fatalf("read %s/%d: %v", fe.Topic, fe.Partition, fe.Err)
	}
	fs.EachRecord(func(rec *kgo.Record) {
		if r.next[rec.Topic] == nil {
			r.next[rec.Topic] = make(map[int32]int64)
		}
		r.next[rec.Topic][rec.Partition] = rec.Offset + 1
		if !rec.Attrs.IsControl() {
			r.recs[rec.Topic] = append(r.recs[rec.Topic], rec)
		}
	})
}

// readUntil reads until done returns true. It fails t when ctx ends first
// or when one of apps stops on its own (its Run returned) meanwhile.
func (r *reader) readUntil(ctx context.Context, what string, done func() bool, apps ...*runningApp) {
	r.t.Helper()
	for !done() {
		if err := ctx.Err(); err != nil {
			r.t.Fatalf("reading %v: gave up waiting for %s: %v (read so far: %s)%s", r.topics, what, err, r.summary(), r.diagnose(apps))
		}
		for _, a := range apps {
			if err, stopped := a.exited(); stopped {
				r.t.Fatalf("reading %v, waiting for %s: App %s stopped on its own: %v (read so far: %s)", r.topics, what, a.name, err, r.summary())
			}
		}
		before := r.total()
		r.poll(ctx)
		if r.total() > before {
			r.progress = time.Now()
		} else if time.Since(r.progress) > readerStall {
			r.reopenIfBehind(ctx)
		}
	}
}

// readerStall is how long a reader may read nothing while the broker holds
// records past its positions before it replaces its client.
const readerStall = 10 * time.Second

// total returns how many data records the reader has read.
func (r *reader) total() int {
	n := 0
	for _, recs := range r.recs {
		n += len(recs)
	}
	return n
}

// reopenIfBehind replaces the reader's client, reading every partition on
// from its position, when the broker holds records past a position: the
// full-suite runs showed a kgo reader that never fetched one partition of
// an output topic (no position after two minutes) while the broker held
// its records. It logs every replacement; a stalled App is not affected
// (the broker then has nothing more).
func (r *reader) reopenIfBehind(ctx context.Context) {
	r.t.Helper()
	r.progress = time.Now()
	ends, err := r.adm.ListEndOffsets(ctx, r.topics...)
	if err != nil {
		return
	}
	behind := false
	parts := map[string]map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			return
		}
		next, ok := r.next[o.Topic][o.Partition]
		if !ok {
			next = 0
		}
		if o.Offset > next {
			behind = true
		}
		if parts[o.Topic] == nil {
			parts[o.Topic] = map[int32]kgo.Offset{}
		}
		parts[o.Topic][o.Partition] = kgo.NewOffset().At(next)
	})
	if !behind {
		return
	}
	r.reopened++
	r.t.Logf("reader of %v: nothing read for %v while the broker holds more (ends %v, positions %v); replacing its client (%d)", r.topics, readerStall, ends, r.next, r.reopened)
	r.cl.Close()
	r.cl = r.b.Client(r.t,
		kgo.ConsumePartitions(parts),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.MetadataMinAge(50*time.Millisecond),
		kgo.MetadataMaxAge(time.Second),
		kgo.DisableFetchSessions(),
	)
}

// readCounts reads until every topic in want has at least its count of
// records.
func (r *reader) readCounts(ctx context.Context, want map[string]int, apps ...*runningApp) {
	r.t.Helper()
	r.readUntil(ctx, fmt.Sprintf("record counts %v", want), func() bool {
		for tp, n := range want {
			if r.count(tp) < n {
				return false
			}
		}
		return true
	}, apps...)
}

// readToEnd reads until every partition of every topic is read up to its
// last stable offset as it is now: whatever the topics hold now has been
// read. Call it after the writers stopped to see that nothing beyond the
// expected records was written.
func (r *reader) readToEnd(ctx context.Context) {
	r.t.Helper()
	end := lastStableOffsets(ctx, r.t, r.adm, r.topics...)
	r.readUntil(ctx, fmt.Sprintf("the end offsets %v", end), func() bool {
		for tp, ps := range end {
			for p, o := range ps {
				if o > 0 && r.next[tp][p] < o {
					return false
				}
			}
		}
		return true
	})
}

func (r *reader) summary() string {
	parts := make([]string, 0, len(r.topics))
	for _, tp := range r.topics {
		parts = append(parts, fmt.Sprintf("%s: %d records", tp, r.count(tp)))
	}
	return strings.Join(parts, ", ")
}

// diagnose says what the apps report and, when set, r.detail: what a test
// needs to see to tell a stuck App from a slow reader.
func (r *reader) diagnose(apps []*runningApp) string {
	var b strings.Builder
	for _, a := range apps {
		m := a.Metrics()
		fmt.Fprintf(&b, "\n  App %s: processed %d, produced %d, commits %d, paused %d (max %d), tasks %v, restoring %v, lag %v",
			a.name, m.RecordsProcessed, m.RecordsProduced, m.Commits, m.Paused, m.MaxPaused, m.Tasks, m.RestoringTasks, m.Lag)
	}
	perPart := map[string]map[int32]int{}
	for tp, recs := range r.recs {
		for _, rec := range recs {
			if perPart[tp] == nil {
				perPart[tp] = map[int32]int{}
			}
			perPart[tp][rec.Partition]++
		}
	}
	fmt.Fprintf(&b, "\n  read per partition: %v", perPart)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if ends, err := r.adm.ListEndOffsets(ctx, r.topics...); err == nil {
		b.WriteString("\n  end offsets on the broker:")
		ends.Each(func(o kadm.ListedOffset) {
			fmt.Fprintf(&b, " %s/%d=%d(err %v)", o.Topic, o.Partition, o.Offset, o.Err)
		})
	} else {
		fmt.Fprintf(&b, "\n  end offsets: %v", err)
	}
	fmt.Fprintf(&b, "\n  the reader's next offsets: %v", r.next)
	if r.detail != nil {
		b.WriteString("\n  " + r.detail())
	}
	return b.String()
}

// lastStableOffsets returns, per topic and partition, the offset up to
// which a read_committed consumer can read (the high watermark when no
// transaction is open).
func lastStableOffsets(ctx context.Context, t testing.TB, adm *kadm.Client, topics ...string) map[string]map[int32]int64 {
	t.Helper()
	var offs kadm.ListedOffsets
	err := retry(ctx, func() error {
		var err error
		offs, err = adm.ListCommittedOffsets(ctx, topics...)
		if err == nil {
			err = offs.Error()
		}
		return err
	})
	if err != nil {
		t.Fatalf("list end offsets of %v: %v", topics, err)
	}
	out := make(map[string]map[int32]int64)
	offs.Each(func(o kadm.ListedOffset) {
		if out[o.Topic] == nil {
			out[o.Topic] = make(map[int32]int64)
		}
		out[o.Topic][o.Partition] = o.Offset
	})
	return out
}

// committedOffsets returns the offsets group committed for topic, by
// partition (absent: nothing committed). It retries errors Kafka calls
// retriable (such as no group coordinator yet) until ctx ends.
func committedOffsets(ctx context.Context, t testing.TB, adm *kadm.Client, group, topic string) map[int32]int64 {
	t.Helper()
	var resp kadm.OffsetResponses
	err := retry(ctx, func() error {
		var err error
		resp, err = adm.FetchOffsets(ctx, group)
		if err == nil {
			err = resp.Error()
		}
		return err
	})
	if err != nil {
		t.Fatalf("fetch the offsets of group %s: %v", group, err)
	}
	out := make(map[int32]int64)
	for p, o := range resp[topic] {
		out[p] = o.At
	}
	return out
}

// requireCommittedToEnd fails t unless group committed, for every partition
// of topic that holds records, exactly the end of the partition.
func requireCommittedToEnd(ctx context.Context, t testing.TB, adm *kadm.Client, group, topic string) {
	t.Helper()
	end := lastStableOffsets(ctx, t, adm, topic)[topic]
	got := committedOffsets(ctx, t, adm, group, topic)
	for p, e := range end {
		if e == 0 {
			continue
		}
		if c, ok := got[p]; !ok || c != e {
			t.Errorf("group %s committed %s/%d at %d (committed: %v), want its end %d", group, topic, p, c, ok, e)
		}
	}
}

// retry calls fn until it returns nil or an error Kafka does not call
// retriable, or ctx ends, and returns fn's last error.
func retry(ctx context.Context, fn func() error) error {
	tick := time.NewTicker(checkEvery)
	defer tick.Stop()
	for {
		err := fn()
		if err == nil || !kerr.IsRetriable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (still failing when the test's time ran out)", err)
		case <-tick.C:
		}
	}
}

// runningApp is an App whose Run runs in a goroutine of the test.
type runningApp struct {
	*kstream.App
	name   string
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned
	err    error         // what Run returned; read after done
	mu     sync.Mutex
	waited bool // the test took Run's result with stop
}

// startApp makes an App of topo with a test logger and fast heartbeats
// plus opts (later options win), and runs it until stop or the end of t.
// If the test did not stop it, the cleanup does, and fails t if Run
// returned an error.
func startApp(t testing.TB, b *kafkatest.Broker, name string, topo *kstream.Topology, opts ...kstream.Opt) *runningApp {
	t.Helper()
	all := []kstream.Opt{
		kstream.Brokers(b.Addrs...),
		kstream.Logger(testLogger(t, name)),
		kstream.ClientOpts(kgo.HeartbeatInterval(testHeartbeat)),
	}
	app, err := kstream.New(topo, append(all, opts...)...)
	if err != nil {
		t.Fatalf("new App %s: %v", name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := &runningApp{App: app, name: name, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(a.done)
		a.err = app.Run(ctx)
	}()
	t.Cleanup(func() {
		a.mu.Lock()
		waited := a.waited
		a.mu.Unlock()
		err := a.stop(t)
		if !waited && err != nil {
			t.Errorf("App %s: Run returned %v", name, err)
		}
	})
	return a
}

// stop cancels the App's context and waits for Run to return, failing t
// if it does not within waitTimeout. It returns what Run returned and may
// be called more than once.
func (a *runningApp) stop(t testing.TB) error {
	t.Helper()
	a.mu.Lock()
	a.waited = true
	a.mu.Unlock()
	a.cancel()
	return a.wait(t)
}

// wait waits for Run to return on its own (without cancelling it), failing
// t if it does not within waitTimeout, and returns what Run returned.
func (a *runningApp) wait(t testing.TB) error {
	t.Helper()
	a.mu.Lock()
	a.waited = true
	a.mu.Unlock()
	select {
	case <-a.done:
		return a.err
	case <-time.After(waitTimeout):
		t.Fatalf("App %s: Run did not return within %v", a.name, waitTimeout)
		return nil
	}
}

// exited reports whether Run returned, and what.
func (a *runningApp) exited() (error, bool) {
	select {
	case <-a.done:
		return a.err, true
	default:
		return nil, false
	}
}

// waitFor waits until cond holds, checking it every checkEvery. It fails t
// when ctx ends first or when one of apps stops on its own meanwhile.
func waitFor(ctx context.Context, t testing.TB, what string, cond func() bool, apps ...*runningApp) {
	t.Helper()
	tick := time.NewTicker(checkEvery)
	defer tick.Stop()
	for !cond() {
		for _, a := range apps {
			if err, stopped := a.exited(); stopped {
				t.Fatalf("waiting for %s: App %s stopped on its own: %v", what, a.name, err)
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("gave up waiting for %s: %v", what, ctx.Err())
		case <-tick.C:
		}
	}
}

// testLogger returns a logger that writes to t.Log, at the level
// STREAMWORK_APP_LOG names (warn by default). It goes quiet when t's
// cleanups have run, so a late log line cannot panic the test binary.
func testLogger(t testing.TB, name string) *slog.Logger {
	level := slog.LevelWarn
	switch strings.ToLower(os.Getenv(appLogEnv)) {
	case "debug":
		level = slog.LevelDebug
	case "info":
		level = slog.LevelInfo
	case "error":
		level = slog.LevelError
	}
	w := &testWriter{t: t}
	t.Cleanup(w.close) // registered before the App's cleanup, so it runs after it
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})).With("app", name)
}

// testWriter passes each write to t.Log until it is closed.
type testWriter struct {
	t      testing.TB
	mu     sync.Mutex
	closed bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
}

var _ io.Writer = (*testWriter)(nil)

// testContext returns a context that ends after testTimeout or with t.
func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}
