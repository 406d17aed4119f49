package integration

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/integration/internal/ledger"
	"github.com/streamwork-go/streamwork/integration/kafkatest"
	"github.com/streamwork-go/streamwork/kstream"
)

// fetchGate holds back the Fetch requests of the clients whose client id
// ends with a suffix while it is closed: given to an App as its dialer
// (kstream.ClientOpts(kgo.Dialer(g.dial))) with the suffix "-restore", it
// freezes where the App's restore consumers — hence its standby tasks —
// have read their changelogs, with no hook in the runtime. Its connections
// read the header of each request as kgo writes it (one Write per
// request: length, API key, version, correlation id, client id); a held
// Write returns when the gate opens, when its write deadline passes (kgo
// sets one when the request's context ends, as when the consumer drops
// partitions) or when the connection closes.
type fetchGate struct {
	suffix string

	mu     sync.Mutex
	closed bool
	pass   int           // Fetch requests still let through while closed
	opened chan struct{} // closed when the gate opens
	held   chan struct{} // closed when the gate first holds a request
	holds  bool          // held is closed
}

func newFetchGate(suffix string) *fetchGate {
	return &fetchGate{suffix: suffix, opened: make(chan struct{})}
}

// closeAfter closes the gate once n more Fetch requests have gone through.
// The channel it returns is closed when the gate holds a request: the
// consumer then has no fetch in flight (kgo sends a broker's next fetch
// only when the previous one's records were polled).
func (g *fetchGate) closeAfter(n int) <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed, g.pass, g.holds = true, n, false
	g.opened, g.held = make(chan struct{}), make(chan struct{})
	return g.held
}

// open lets every held and later request through.
func (g *fetchGate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		g.closed = false
		close(g.opened)
	}
}

// dial is the kgo.Dialer of the clients the gate watches.
func (g *fetchGate) dial(ctx context.Context, network, host string) (net.Conn, error) {
	c, err := (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, network, host)
	if err != nil {
		return nil, err
	}
	return &gatedConn{Conn: c, g: g, changed: make(chan struct{}), done: make(chan struct{})}, nil
}

// gates reports whether the request in b (a whole request, as kgo writes
// it) is a Fetch of a client the gate watches.
func (g *fetchGate) gates(b []byte) bool {
	if len(b) < 14 || binary.BigEndian.Uint16(b[4:6]) != 1 { // API key 1: Fetch
		return false
	}
	n := int(int16(binary.BigEndian.Uint16(b[12:14])))
	return n >= 0 && len(b) >= 14+n && strings.HasSuffix(string(b[14:14+n]), g.suffix)
}

// gatedConn is a connection of the gate's clients.
type gatedConn struct {
	net.Conn
	g *fetchGate

	mu       sync.Mutex
	deadline time.Time     // the write deadline
	changed  chan struct{} // closed (and replaced) when deadline changes
	done     chan struct{} // closed by Close
	once     sync.Once
}

func (c *gatedConn) Write(b []byte) (int, error) {
	if c.g.gates(b) {
		if err := c.wait(); err != nil {
			return 0, err
		}
	}
	return c.Conn.Write(b)
}

// wait returns when the gate lets the request through, or with the error
// the write would have failed with.
func (c *gatedConn) wait() error {
	g := c.g
	g.mu.Lock()
	if !g.closed {
		g.mu.Unlock()
		return nil
	}
	if g.pass > 0 {
		g.pass--
		g.mu.Unlock()
		return nil
	}
	if !g.holds {
		g.holds = true
		close(g.held)
	}
	opened := g.opened
	g.mu.Unlock()
	for {
		c.mu.Lock()
		deadline, changed := c.deadline, c.changed
		c.mu.Unlock()
		var expire <-chan time.Time
		if !deadline.IsZero() {
			d := time.Until(deadline)
			if d <= 0 {
				return os.ErrDeadlineExceeded
			}
			tm := time.NewTimer(d)
			defer tm.Stop()
			expire = tm.C
		}
		select {
		case <-opened:
			return nil
		case <-changed:
		case <-expire:
			return os.ErrDeadlineExceeded
		case <-c.done:
			return net.ErrClosed
		}
	}
}

func (c *gatedConn) setWriteDeadline(t time.Time) {
	c.mu.Lock()
	c.deadline = t
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

func (c *gatedConn) SetWriteDeadline(t time.Time) error {
	c.setWriteDeadline(t)
	return c.Conn.SetWriteDeadline(t)
}

func (c *gatedConn) SetDeadline(t time.Time) error {
	c.setWriteDeadline(t)
	return c.Conn.SetDeadline(t)
}

func (c *gatedConn) Close() error {
	c.once.Do(func() { close(c.done) })
	return c.Conn.Close()
}

// logTap is a slog.Handler that keeps the records with the messages it
// watches (at info level or above, whatever the inner handler's level)
// and passes every record its inner handler wants on to it. It also keeps
// the text of every record at info level or above, which the test prints
// if it fails (see printOnFailure).
type logTap struct {
	inner slog.Handler
	text  slog.Handler // into *all, under mu
	msgs  []string
	mu    *sync.Mutex
	recs  *[]slog.Record
	all   *bytes.Buffer
}

func tapLogs(inner slog.Handler, msgs ...string) *logTap {
	h := &logTap{inner: inner, msgs: msgs, mu: new(sync.Mutex), recs: new([]slog.Record), all: new(bytes.Buffer)}
	h.text = slog.NewTextHandler(h.all, &slog.HandlerOptions{Level: slog.LevelInfo})
	return h
}

// printOnFailure logs, when t has failed by its end, every record the tap
// saw at info level or above.
func (h *logTap) printOnFailure(t *testing.T, name string) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		t.Logf("the info log of %s:\n%s", name, h.all.String())
	})
}

func (h *logTap) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || h.inner.Enabled(ctx, l)
}

func (h *logTap) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	if slices.Contains(h.msgs, r.Message) {
		*h.recs = append(*h.recs, r.Clone())
	}
	if r.Level >= slog.LevelInfo {
		_ = h.text.Handle(ctx, r)
	}
	h.mu.Unlock()
	if h.inner.Enabled(ctx, r.Level) {
		return h.inner.Handle(ctx, r)
	}
	return nil
}

func (h *logTap) WithAttrs(as []slog.Attr) slog.Handler {
	return &logTap{inner: h.inner.WithAttrs(as), text: h.text.WithAttrs(as), msgs: h.msgs, mu: h.mu, recs: h.recs, all: h.all}
}

func (h *logTap) WithGroup(name string) slog.Handler {
	return &logTap{inner: h.inner.WithGroup(name), text: h.text.WithGroup(name), msgs: h.msgs, mu: h.mu, recs: h.recs, all: h.all}
}

// records returns the records kept with message msg, in order.
func (h *logTap) records(msg string) []slog.Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []slog.Record
	for _, r := range *h.recs {
		if r.Message == msg {
			out = append(out, r)
		}
	}
	return out
}

// restoreLine is one "kstream: restoring store" line: where the restore of
// one store starts and ends.
type restoreLine struct {
	task, store string
	from, to    int64
}

const restoringStore = "kstream: restoring store"

// restoreLines returns the restoring-store lines h kept.
func restoreLines(h *logTap) []restoreLine {
	var out []restoreLine
	for _, r := range h.records(restoringStore) {
		var line restoreLine
		r.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "task":
				line.task = a.Value.String()
			case "store":
				line.store = a.Value.String()
			case "from":
				line.from = a.Value.Int64()
			case "to":
				line.to = a.Value.Int64()
			}
			return true
		})
		out = append(out, line)
	}
	return out
}

// committedRecords counts the committed data records of partition p of
// topic at offsets [from, to), where to is a last stable offset (so the
// record at to-1 is a transaction marker or a committed record): what a
// read-committed restore of that range applies.
func committedRecords(ctx context.Context, t testing.TB, b *kafkatest.Broker, topic string, p int32, from, to int64) int64 {
	t.Helper()
	if from >= to {
		return 0
	}
	cl := b.Client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().At(from)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	var n int64
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("count the committed records of %s/%d in [%d, %d): %v", topic, p, from, to, err)
		}
		for _, fe := range fs.Errors() {
			t.Logf("count the committed records of %s/%d: fetch error %v", topic, p, fe.Err)
		}
		last := int64(-1)
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset < to && !r.Attrs.IsControl() {
				n++
			}
			last = max(last, r.Offset)
		})
		if last >= to-1 {
			return n
		}
	}
}

// Failover after a crash, with a standby that missed records: instance a
// runs as a process of its own (eosapp, the ledger workload) and is killed
// (SIGKILL) in the middle of a burst, under exactly-once; instance b, in
// the test, keeps a standby of each of a's stateful tasks. b's restore
// consumer is held back (fetchGate) from the moment its standbys have read
// the first part of the input's changelog records, so at the crash they
// lack exactly what a committed since. Taking a's tasks over, b restores
// from where each standby stood — asserted against the changelogs' last
// stable offsets when the gate closed — and applies exactly the committed
// changelog records from there to the end (counted with a read-committed
// consumer, transaction markers not counted): more than none, fewer than
// the changelogs hold. The outputs are then exact: every input passed
// through once, final counts and sums right, in the topics and the stores.
func TestStandbyFailoverAfterCrashRestoresWhatTheStandbyMissed(t *testing.T) {
	b := kafkatest.Require(t)
	ctx := testContext(t)
	bin := buildTestProgram(ctx, t, "eosapp")
	const partitions = 4
	tp := ledger.Topics{
		Input:       newTopic(t, b, "failover-in", partitions),
		Passthrough: newTopic(t, b, "failover-pass", partitions),
		Counts:      newTopic(t, b, "failover-counts", partitions),
		Sums:        newTopic(t, b, "failover-sums", partitions),
	}
	group := kafkatest.UniqueName(t, "failover")
	stores := []string{"counts", "sums"}
	changelog := func(store string) string { return group + "-" + store + "-changelog" }
	deleteTopicsAtEnd(t, b, changelog("counts"), changelog("sums"), ledger.RepartitionTopic(group))
	plan := ledgerPlan{partitions: partitions, records: 9000, users: 400, groups: 40, seed: 11}
	inputs, exp := ledgerInputs(plan, tp.Input)
	phase1, phase2, burst := inputs[:3000], inputs[3000:6000], inputs[6000:]

	topo, err := ledger.Topology(tp, plan.groups, nil)
	if err != nil {
		t.Fatal(err)
	}
	gate := newFetchGate("-restore")
	logs := tapLogs(testLogger(t, "b").Handler(), restoringStore)
	logs.printOnFailure(t, "b")
	s := startApp(t, b, "b", topo, kstream.ApplicationID(group), kstream.Guarantee(kstream.ExactlyOnce),
		kstream.CommitInterval(100*time.Millisecond), kstream.StandbyReplicas(1), kstream.InstanceID("b"),
		kstream.StateDir(t.TempDir()), kstream.Logger(slog.New(logs)), kstream.ClientOpts(kgo.Dialer(gate.dial)))

	// b runs every task, then a joins: b runs half the tasks and keeps a
	// standby of each counting task a runs (a runs at least one: b keeps
	// at most half the tasks).
	waitAssigned(ctx, t, 8, s)
	a := startCrashApp(ctx, t, bin, "a",
		"-brokers", strings.Join(b.Addrs, ","), "-app", group,
		"-input", tp.Input, "-passthrough", tp.Passthrough, "-counts", tp.Counts, "-sums", tp.Sums,
		"-groups", strconv.Itoa(plan.groups), "-state-dir", filepath.Join(t.TempDir(), "a"),
		"-guarantee", "exactly-once", "-instance", "a", "-standby-replicas", "1",
		"-commit-interval", "100ms", "-session-timeout", "6s", "-log-level", "info")
	var standbys []kstream.TaskID
	waitFor(ctx, t, "b runs half the tasks and keeps standbys of a's counting tasks", func() bool {
		a.running(t)
		m := s.Metrics()
		var others []kstream.TaskID
		for p := range int32(partitions) {
			if id := (kstream.TaskID{Subtopology: 1, Partition: p}); !slices.Contains(m.Tasks, id) {
				others = append(others, id)
			}
		}
		standbys = m.StandbyTasks
		return len(m.Tasks) == 4 && len(m.RestoringTasks) == 0 && len(others) > 0 && slices.Equal(standbys, others)
	}, s)

	cl := producer(t, b)
	adm := b.Admin(t)
	waitCommitted := func(what string) {
		t.Helper()
		inEnd := lastStableOffsets(ctx, t, adm, tp.Input)[tp.Input]
		waitFor(ctx, t, what, func() bool {
			if !committedAll(ctx, t, adm, group, tp.Input, inEnd) {
				return false
			}
			repart := ledger.RepartitionTopic(group)
			return committedAll(ctx, t, adm, group, repart, lastStableOffsets(ctx, t, adm, repart)[repart])
		}, s)
	}
	// Each part in batches, each committed before the next, so that the
	// changelogs get several transactions per part.
	const batch = 500
	producePart := func(what string, recs []*kgo.Record) {
		t.Helper()
		for i := 0; i < len(recs); i += batch {
			produce(ctx, t, cl, recs[i:min(i+batch, len(recs))])
			waitCommitted(fmt.Sprintf("the group to commit %s up to record %d", what, min(i+batch, len(recs))))
		}
	}
	producePart("the first part", phase1)
	a.running(t)
	ends1 := lastStableOffsets(ctx, t, adm, changelog("counts"), changelog("sums"))
	waitFor(ctx, t, "b's standbys caught up", func() bool {
		m := s.Metrics()
		for _, id := range standbys {
			if l, ok := m.StandbyLag[id]; !ok || l != 0 {
				return false
			}
		}
		return true
	}, s)
	// One more fetch, sent now that nothing more is written, reads up to
	// ends1; the next one is held.
	held := gate.closeAfter(1)
	select {
	case <-held:
	case <-ctx.Done():
		t.Fatalf("b's restore consumer sent no second fetch: %v", ctx.Err())
	}
	restoredBefore := s.Metrics().RestoredRecords
	t.Logf("b's standbys %v hold the changelogs up to %v; their reads are held from here", standbys, ends1)

	producePart("the second part", phase2)
	ends2 := lastStableOffsets(ctx, t, adm, changelog("counts"), changelog("sums"))
	produce(ctx, t, cl, burst)
	// a is killed once it committed changelog records of the burst for one
	// of the tasks b keeps standbys of, in the middle of its work.
	waitFor(ctx, t, "a to commit part of the burst", func() bool {
		a.running(t)
		ends := lastStableOffsets(ctx, t, adm, changelog("counts"))[changelog("counts")]
		return slices.ContainsFunc(standbys, func(id kstream.TaskID) bool {
			return ends[id.Partition] > ends2[changelog("counts")][id.Partition]
		})
	}, s)
	a.kill(ctx, t)
	killed := time.Now()
	t.Logf("SIGKILL a in the burst of %d records; the changelogs' ends before the burst: %v", len(burst), ends2)

	waitFor(ctx, t, "b to restore a's counting tasks", func() bool {
		return len(s.Metrics().RestoringTasks) > 0
	}, s)
	gate.open()
	waitAssigned(ctx, t, 8, s)
	t.Logf("b took a's tasks over %v after the kill", time.Since(killed).Round(time.Millisecond))
	restored := s.Metrics().RestoredRecords - restoredBefore

	// The restores of a's counting tasks started where b's standbys
	// stood, and went to the end of the committed changelogs.
	lines := restoreLines(logs)
	var want, total int64
	var seen []string
	for _, l := range lines {
		id := slices.IndexFunc(standbys, func(id kstream.TaskID) bool { return id.String() == l.task })
		if id < 0 || !slices.Contains(stores, l.store) {
			t.Fatalf("b restored store %q of task %s, not a standby of a's tasks %v", l.store, l.task, standbys)
		}
		p := standbys[id].Partition
		topic := changelog(l.store)
		if l.from != ends1[topic][p] {
			t.Fatalf("b restored %s/%d from offset %d, want %d: where its standby stood when its reads were held", topic, p, l.from, ends1[topic][p])
		}
		if l.to < ends2[topic][p] {
			t.Fatalf("b restored %s/%d up to offset %d, before the end %d of what a committed before the burst", topic, p, l.to, ends2[topic][p])
		}
		missed := committedRecords(ctx, t, b, topic, p, l.from, l.to)
		all := committedRecords(ctx, t, b, topic, p, 0, l.to)
		t.Logf("%s/%d (task %s): standby at %d, end %d at takeover: %d committed records missed of %d", topic, p, l.task, l.from, l.to, missed, all)
		want += missed
		total += all
		seen = append(seen, l.task+"/"+l.store)
	}
	if len(seen) != len(standbys)*len(stores) {
		t.Fatalf("b restored %v, want every store of %v (in every partition, a committed records the standbys missed)", seen, standbys)
	}
	t.Logf("b took over %v restoring %d changelog records: the standbys missed %d of the %d the changelogs hold", standbys, restored, want, total)
	if restored != want {
		t.Fatalf("b restored %d changelog records taking over %v, want %d (the committed records past its standbys' offsets)", restored, standbys, want)
	}
	if restored <= 0 || restored >= total {
		t.Fatalf("b restored %d changelog records; want more than none and fewer than the changelogs' %d", restored, total)
	}

	// a's last transaction, open when it was killed, holds the last stable
	// offsets of the topics it wrote back until it times out and is
	// aborted: only then can b read and commit what lies beyond.
	outputs := []string{tp.Passthrough, tp.Counts, tp.Sums}
	written := append([]string{ledger.RepartitionTopic(group)}, outputs...)
	waitFor(ctx, t, "no transaction of a left open", func() bool {
		lso := lastStableOffsets(ctx, t, adm, written...)
		hw, err := adm.ListEndOffsets(ctx, written...)
		if err != nil || hw.Error() != nil {
			return false
		}
		open := false
		hw.Each(func(o kadm.ListedOffset) { open = open || lso[o.Topic][o.Partition] != o.Offset })
		return !open
	}, s)
	t.Logf("a's transactions are all ended %v after the kill", time.Since(killed).Round(time.Millisecond))
	waitCommitted("b to commit the whole input")
	t.Logf("b committed the whole input %v after the kill", time.Since(killed).Round(time.Millisecond))
	rd := newReader(t, b, outputs...)
	rd.readToEnd(ctx)
	v := judgeLedger(exp, rd.records(tp.Passthrough), rd.records(tp.Counts), rd.records(tp.Sums))
	if len(v.missing)+len(v.duplicated)+len(v.unexpected) > 0 {
		t.Fatalf("pass-through: %d missing %v, %d duplicated %v, %d unexpected %v", len(v.missing), head(v.missing), len(v.duplicated), head(v.duplicated), len(v.unexpected), head(v.unexpected))
	}
	for _, agg := range stores {
		if len(v.wrongFinal[agg])+len(v.regressions[agg]) > 0 {
			t.Fatalf("%s: wrong final values %v; regressions %v", agg, head(v.wrongFinal[agg]), head(v.regressions[agg]))
		}
	}
	requireStoreEquals(t, s, "counts", exp.counts)
	requireStoreEquals(t, s, "sums", exp.sums)
	if v.passthrough != len(inputs) {
		t.Fatalf("read %d pass-through records, want %d", v.passthrough, len(inputs))
	}
}

// head returns the first ten of ss, for messages.
func head(ss []string) []string {
	if len(ss) > 10 {
		return append(slices.Clone(ss[:10]), fmt.Sprintf("... %d more", len(ss)-10))
	}
	return ss
}
