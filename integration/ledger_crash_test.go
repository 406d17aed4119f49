package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/integration/internal/ledger"
	"github.com/streamwork-go/streamwork/integration/kafkatest"
	"github.com/streamwork-go/streamwork/serde"
)

// The ledger crash test runs the ledger workload (internal/ledger) as
// several eosapp processes, kills them at random times, stops one past its
// session timeout, and checks the outputs against what the test computes
// from the inputs. Its size is set by these environment variables.
const (
	// crashFullEnv, set to 1, runs the full size: 200,000 records over 6
	// partitions, 3 processes of 2 workers, 12 kills and a stop. Without
	// it the test runs a reduced size that still kills and stops.
	crashFullEnv = "STREAMWORK_CRASH_FULL"
	// crashSeedEnv sets the seed of the kill schedule and of the input, to
	// replay a run; every run logs its seed.
	crashSeedEnv = "STREAMWORK_CRASH_SEED"
	// crashLogsEnv names a directory into which the test copies the log
	// of every process it ran, for a closer look.
	crashLogsEnv = "STREAMWORK_CRASH_LOGS"
)

// ledgerPlan is the size and schedule of one ledger crash run.
type ledgerPlan struct {
	guarantee  string
	instances  int
	workers    int
	partitions int32
	records    int
	users      int
	groups     int
	kills      int
	// produceFor is how long the paced producer spreads the input over;
	// the kills and the stop happen while it writes.
	produceFor time.Duration
	// stopFor is how long the stopped instance stays stopped: longer than
	// sessionTimeout, so the group evicts it and its transaction must be
	// fenced.
	stopFor        time.Duration
	sessionTimeout time.Duration
	// timeout bounds the whole run.
	timeout time.Duration
	seed    uint64
}

// planLedger returns the plan for guarantee: the full size when
// STREAMWORK_CRASH_FULL=1, else the reduced one CI runs.
func planLedger(t *testing.T, guarantee string) ledgerPlan {
	p := ledgerPlan{
		guarantee: guarantee, instances: 3, workers: 1, partitions: 6,
		records: 30000, users: 1000, groups: 40, kills: 4,
		produceFor: 30 * time.Second, sessionTimeout: 6 * time.Second,
		timeout: 5 * time.Minute,
	}
	if os.Getenv(crashFullEnv) == "1" {
		p.workers, p.records, p.users, p.kills = 2, 200000, 5000, 12
		p.produceFor, p.timeout = 100*time.Second, 15*time.Minute
	} else if raceEnabled {
		// The race detector slows the programs several times over.
		p.records = 15000
	}
	p.stopFor = p.sessionTimeout + 4*time.Second
	p.seed = uint64(time.Now().UnixNano())
	if s := os.Getenv(crashSeedEnv); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", crashSeedEnv, s, err)
		}
		p.seed = v
	}
	return p
}

// ledgerExpected is what the outputs must hold: computed from the inputs.
type ledgerExpected struct {
	// keyOf is, per input value (unique), its key.
	keyOf  map[string]string
	counts map[string]int64 // per group
	sums   map[string]int64 // per group
	// events are the inputs in order, for the windowed counts.
	events []ledgerInput
}

// ledgerInput is one input event as the windowed counts see it.
type ledgerInput struct {
	value, group string
	ts           int64 // ms
	// flush: one of the last records, an hour past the others in event
	// time, that close every window and session before them.
	flush bool
}

// ledgerInputs makes the plan's input records (user keys at random from
// the plan's seed, partition = user modulo partitions, event time
// ledger.Timestamp), then one flush record per group, an hour later in
// event time, and what they must produce.
func ledgerInputs(p ledgerPlan, topic string) ([]*kgo.Record, ledgerExpected) {
	rng := rand.New(rand.NewPCG(p.seed, 1))
	n := p.records + p.groups
	exp := ledgerExpected{keyOf: make(map[string]string, n), counts: map[string]int64{}, sums: map[string]int64{}}
	recs := make([]*kgo.Record, n)
	flushAt := ledger.Timestamp(p.records).Add(time.Hour + 10*time.Second)
	for i := range recs {
		u, ts, flush := 0, ledger.Timestamp(i), i >= p.records
		if flush {
			u, ts = i-p.records, flushAt // user g is in group g
		} else {
			u = rng.IntN(p.users)
		}
		k, v := ledger.Key(u), ledger.Value(i)
		g, _ := ledger.GroupOf(k, p.groups)
		exp.keyOf[v] = k
		exp.counts[g]++
		exp.sums[g] += ledger.Amount(i)
		exp.events = append(exp.events, ledgerInput{value: v, group: g, ts: ts.UnixMilli(), flush: flush})
		recs[i] = &kgo.Record{Topic: topic, Partition: int32(u) % p.partitions, Key: []byte(k), Value: []byte(v), Timestamp: ts}
	}
	return recs, exp
}

// ledgerVerdict is what a run's outputs show against the expectation.
type ledgerVerdict struct {
	passthrough int      // pass-through records read
	missing     []string // inputs without a pass-through output
	duplicated  []string // inputs with more than one
	unexpected  []string // pass-through outputs that match no input
	// Per aggregation ("counts", "sums"): the groups whose last committed
	// value differs from the expected one, the updates that repeat or
	// lower the previous value of their group, and the sum over groups of
	// last minus expected (positive: effects applied twice).
	wrongFinal  map[string][]string
	regressions map[string][]string
	excess      map[string]int64
	updates     map[string]int
	// windows is the verdict on the windowed counts, joins on the joins.
	windows windowVerdict
	joins   []string
}

// judgeLedger compares what was read from the output topics (each in the
// order of its partitions) with exp.
func judgeLedger(exp ledgerExpected, passthrough, counts, sums []*kgo.Record) ledgerVerdict {
	v := ledgerVerdict{
		passthrough: len(passthrough),
		wrongFinal:  map[string][]string{}, regressions: map[string][]string{},
		excess: map[string]int64{}, updates: map[string]int{},
	}
	seen := make(map[string]int, len(exp.keyOf))
	for _, r := range passthrough {
		k, ok := exp.keyOf[string(r.Value)]
		if !ok || k != string(r.Key) {
			v.unexpected = append(v.unexpected, recString(r))
			continue
		}
		seen[string(r.Value)]++
	}
	for val := range exp.keyOf {
		switch n := seen[val]; {
		case n == 0:
			v.missing = append(v.missing, val)
		case n > 1:
			v.duplicated = append(v.duplicated, fmt.Sprintf("%s x%d", val, n))
		}
	}
	slices.Sort(v.missing)
	slices.Sort(v.duplicated)
	for _, agg := range []struct {
		name string
		recs []*kgo.Record
		want map[string]int64
	}{{"counts", counts, exp.counts}, {"sums", sums, exp.sums}} {
		last := map[string]int64{}
		for _, r := range agg.recs {
			g := string(r.Key)
			n, err := serde.Int64.Deserialize(r.Topic, r.Value)
			if err != nil {
				v.regressions[agg.name] = append(v.regressions[agg.name], fmt.Sprintf("%s: undecodable %q: %v", g, r.Value, err))
				continue
			}
			if prev, ok := last[g]; ok && n <= prev {
				v.regressions[agg.name] = append(v.regressions[agg.name], fmt.Sprintf("%s: %d after %d (%s/%d@%d)", g, n, prev, r.Topic, r.Partition, r.Offset))
			}
			last[g] = n
			v.updates[agg.name]++
		}
		for g, want := range agg.want {
			got, ok := last[g]
			if !ok || got != want {
				v.wrongFinal[agg.name] = append(v.wrongFinal[agg.name], fmt.Sprintf("%s: last %d (present %v), want %d", g, got, ok, want))
			}
			v.excess[agg.name] += got - want
		}
		for g := range last {
			if _, ok := agg.want[g]; !ok {
				v.wrongFinal[agg.name] = append(v.wrongFinal[agg.name], fmt.Sprintf("%s: unexpected group", g))
			}
		}
		slices.Sort(v.wrongFinal[agg.name])
	}
	return v
}

// ledgerSlot is one instance of the application: its state directory
// survives its restarts, and so, under exactly-once, does its instance id.
type ledgerSlot struct {
	name     string
	stateDir string
	runs     []*crashProc // every run, the current one last
	stopped  bool
}

func (s *ledgerSlot) cur() *crashProc { return s.runs[len(s.runs)-1] }

// ledgerEvent is one disturbance of the schedule.
type ledgerEvent struct {
	at   time.Duration // since the start of production
	kind string        // "kill", "stop" or "cont"
	slot int           // for "cont": the slot stopped
}

// schedule returns the plan's disturbances in time order: kills at
// uniformly random times over the production, and one stop, in the middle
// third, that lasts stopFor.
func (p ledgerPlan) schedule() []ledgerEvent {
	rng := rand.New(rand.NewPCG(p.seed, 2))
	var evs []ledgerEvent
	span := p.produceFor - 2*time.Second
	for range p.kills {
		evs = append(evs, ledgerEvent{at: 2*time.Second + time.Duration(rng.Int64N(int64(span))), kind: "kill"})
	}
	stopAt := p.produceFor/3 + time.Duration(rng.Int64N(int64(p.produceFor/3)))
	evs = append(evs, ledgerEvent{at: stopAt, kind: "stop"}, ledgerEvent{at: stopAt + p.stopFor, kind: "cont"})
	slices.SortStableFunc(evs, func(a, b ledgerEvent) int { return int(a.at - b.at) })
	return evs
}

// ledgerOutcome is what runLedger observed.
type ledgerOutcome struct {
	plan    ledgerPlan
	group   string // the application id
	exp     ledgerExpected
	verdict ledgerVerdict
	slots   []*ledgerSlot
	kills   int
	stops   int
	took    time.Duration
	// zombie is what the stopped run logged after it was continued that
	// shows the group had fenced it (a loss of its partitions, or its
	// producer fenced); empty if it logged nothing of the kind.
	zombie string
}

// fencedSigns are what a run logs when it finds, after a stop, that the
// group gave its partitions away, or refused the offsets of its open
// transaction (its generation is stale: a rebalance went on without it),
// or that its producer was fenced.
var fencedSigns = []string{"kstream: partitions lost", "the group refused the offsets", "kstream: fenced"}

// runLedger runs the plan against b: it writes the input at a steady pace
// while the instances run, kills (SIGKILL) a random instance at each kill
// of the schedule and restarts it at once with the same state directory,
// stops one (SIGSTOP) for longer than its session timeout and continues it
// (SIGCONT), then waits until the group committed the whole input and the
// whole repartition topic, stops every instance with SIGTERM (each must
// exit 0) and reads the outputs with read_committed.
func runLedger(t *testing.T, b *kafkatest.Broker, p ledgerPlan) ledgerOutcome {
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	began := time.Now()
	t.Logf("%s: %d records, %d users in %d groups, %d partitions, %d instances x %d workers, %d kills and a %v stop over %v; seed %d (%s=%d replays it)",
		p.guarantee, p.records, p.users, p.groups, p.partitions, p.instances, p.workers, p.kills, p.stopFor, p.produceFor, p.seed, crashSeedEnv, p.seed)

	bin := buildTestProgram(ctx, t, "eosapp")
	tp := ledger.Topics{
		Input:       newTopic(t, b, "ledger-in", p.partitions),
		Passthrough: newTopic(t, b, "ledger-pass", p.partitions),
		Counts:      newTopic(t, b, "ledger-counts", p.partitions),
		Sums:        newTopic(t, b, "ledger-sums", p.partitions),
		Windows:     newTopic(t, b, "ledger-windows", p.partitions),
		Sessions:    newTopic(t, b, "ledger-sessions", p.partitions),
		Late:        newTopic(t, b, "ledger-late", p.partitions),
		Pairs:       newTopic(t, b, "ledger-pairs", p.partitions),
		Ranked:      newTopic(t, b, "ledger-ranked", p.partitions),
	}
	group := kafkatest.UniqueName(t, "ledger")
	inputs, exp := ledgerInputs(p, tp.Input)

	slots := make([]*ledgerSlot, p.instances)
	args := func(s *ledgerSlot) []string {
		a := []string{
			"-brokers", strings.Join(b.Addrs, ","), "-app", group,
			"-input", tp.Input, "-passthrough", tp.Passthrough, "-counts", tp.Counts, "-sums", tp.Sums,
			"-windows", tp.Windows, "-sessions", tp.Sessions, "-late", tp.Late,
			"-pairs", tp.Pairs, "-ranked", tp.Ranked,
			"-groups", strconv.Itoa(p.groups), "-state-dir", s.stateDir, "-guarantee", p.guarantee,
			"-workers", strconv.Itoa(p.workers), "-session-timeout", p.sessionTimeout.String(),
			"-commit-interval", "100ms", "-log-level", "info",
		}
		if p.guarantee != "exactly-once" {
			// Exactly-once keeps its instance id in the state directory;
			// the others are given theirs.
			a = append(a, "-instance", s.name)
		}
		return a
	}
	start := func(s *ledgerSlot) {
		s.runs = append(s.runs, startCrashApp(ctx, t, bin, fmt.Sprintf("%s-run%d", s.name, len(s.runs)+1), args(s)...))
	}
	for i := range slots {
		slots[i] = &ledgerSlot{name: fmt.Sprintf("inst%d", i+1), stateDir: filepath.Join(t.TempDir(), "state")}
		start(slots[i])
	}

	cl := producer(t, b)
	const batch = 250
	// The flush records go last, once the group has committed everything
	// else: they close every window and session, and would make the
	// records of a stalled instance late if they came while it stalls.
	regular, flush := inputs[:p.records], inputs[p.records:]
	flow := startFlow(t, cl, regular, batch, p.produceFor*batch/time.Duration(p.records), -1)
	produceStart := time.Now()

	rng := rand.New(rand.NewPCG(p.seed, 3))
	out := ledgerOutcome{plan: p, group: group, exp: exp, slots: slots}
	events := p.schedule()
	var stoppedOrWatched func(*ledgerSlot) bool
	pick := func() *ledgerSlot {
		var live []*ledgerSlot
		for _, s := range slots {
			if !stoppedOrWatched(s) {
				live = append(live, s)
			}
		}
		return live[rng.IntN(len(live))]
	}
	var (
		stoppedSlot *ledgerSlot
		// The continued run is spared from kills until it logged that it
		// was fenced, so that it shows it was (for a minute at most).
		watch     *crashProc
		watchFrom int64
		contAt    time.Time
	)
	watching := func() bool {
		if watch == nil || out.zombie != "" || time.Since(contAt) > time.Minute {
			return false
		}
		if sign := logLineAfter(watch.logPath, watchFrom, fencedSigns); sign != "" {
			out.zombie = sign
			t.Logf("%v: %s, continued %v ago, logged: %s", time.Since(produceStart).Round(time.Millisecond), watch.name, time.Since(contAt).Round(time.Millisecond), sign)
			return false
		}
		return true
	}
	stoppedOrWatched = func(s *ledgerSlot) bool { return s.stopped || s.cur() == watch && watching() }
	tick := time.NewTicker(checkEvery)
	defer tick.Stop()
	for len(events) > 0 || !flowDone(flow) || watching() {
		flow.check(t)
		for _, s := range slots {
			s.cur().running(t)
		}
		for len(events) > 0 && time.Since(produceStart) >= events[0].at {
			ev := events[0]
			events = events[1:]
			switch ev.kind {
			case "kill":
				s := pick()
				s.cur().kill(ctx, t)
				out.kills++
				t.Logf("%v: SIGKILL %s (kill %d); restarting it", time.Since(produceStart).Round(time.Millisecond), s.cur().name, out.kills)
				start(s)
			case "stop":
				stoppedSlot = pick()
				stoppedSlot.cur().signal(t, syscall.SIGSTOP)
				stoppedSlot.stopped = true
				out.stops++
				t.Logf("%v: SIGSTOP %s for %v", time.Since(produceStart).Round(time.Millisecond), stoppedSlot.cur().name, p.stopFor)
			case "cont":
				watch, contAt = stoppedSlot.cur(), time.Now()
				if fi, err := os.Stat(watch.logPath); err == nil {
					watchFrom = fi.Size()
				}
				stoppedSlot.cur().signal(t, syscall.SIGCONT)
				stoppedSlot.stopped = false
				t.Logf("%v: SIGCONT %s", time.Since(produceStart).Round(time.Millisecond), stoppedSlot.cur().name)
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the schedule did not finish in time: %v (produced %d of %d)", ctx.Err(), flow.produced.Load(), p.records)
		case <-tick.C:
		}
	}
	flow.check(t)
	t.Logf("%v: all %d records written, every disturbance done; waiting for the group to commit everything", time.Since(produceStart).Round(time.Millisecond), p.records)

	adm := b.Admin(t)
	repart := ledger.RepartitionTopic(group)
	waitCommitted := func(what string) {
		inEnd := lastStableOffsets(ctx, t, adm, tp.Input)[tp.Input]
		waitFor(ctx, t, what, func() bool {
			for _, s := range slots {
				s.cur().running(t)
			}
			if !committedAll(ctx, t, adm, group, tp.Input, inEnd) {
				return false
			}
			// Once the input is committed, everything written to the
			// repartition topic for it is there (exactly-once: committed in
			// the same transactions; at-least-once: flushed before).
			end := lastStableOffsets(ctx, t, adm, repart)[repart]
			return committedAll(ctx, t, adm, group, repart, end)
		})
	}
	waitCommitted("the group to commit the whole input and repartition topic")
	produce(ctx, t, cl, flush)
	waitCommitted("the group to commit the flush records")
	for _, s := range slots {
		s.cur().terminate(ctx, t)
	}
	t.Logf("%v: all instances stopped cleanly; reading the outputs", time.Since(produceStart).Round(time.Millisecond))

	rd := newReader(t, b, tp.Passthrough, tp.Counts, tp.Sums, tp.Windows, tp.Sessions, tp.Late, tp.Pairs, tp.Ranked)
	rd.readToEnd(ctx)
	out.verdict = judgeLedger(exp, rd.records(tp.Passthrough), rd.records(tp.Counts), rd.records(tp.Sums))
	out.verdict.windows = judgeWindows(exp, rd.records(tp.Windows), rd.records(tp.Sessions), rd.records(tp.Late))
	out.verdict.joins = judgeJoins(exp, rd.records(tp.Pairs), rd.records(tp.Ranked))
	out.took = time.Since(began)
	return out
}

// committedAll reports whether group committed, for every partition of
// topic in end that holds records, exactly its end offset.
func committedAll(ctx context.Context, t testing.TB, adm *kadm.Client, group, topic string, end map[int32]int64) bool {
	t.Helper()
	got := committedOffsets(ctx, t, adm, group, topic)
	for p, e := range end {
		if e > 0 && got[p] != e {
			return false
		}
	}
	return true
}

func flowDone(f *flowProducer) bool {
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

// summary logs the outcome: runs, kills, what each process logged about
// transactions, and the verdict's counts.
func (o ledgerOutcome) summary(t *testing.T) {
	t.Helper()
	v := o.verdict
	runs := 0
	var logs []string
	for _, s := range o.slots {
		runs += len(s.runs)
		for _, r := range s.runs {
			logs = append(logs, r.logPath)
		}
	}
	if dir := os.Getenv(crashLogsEnv); dir != "" {
		for _, p := range logs {
			b, err := os.ReadFile(p)
			if err == nil {
				err = os.MkdirAll(dir, 0o755)
			}
			if err == nil {
				err = os.WriteFile(filepath.Join(dir, o.plan.guarantee+"-"+filepath.Base(p)), b, 0o644)
			}
			if err != nil {
				t.Errorf("copy log %s to %s: %v", p, dir, err)
			}
		}
		t.Logf("process logs copied to %s", dir)
	}
	aborts := countLogLines(t, logs, "kstream: transaction aborted")
	fenced := countLogLines(t, logs, "kstream: fenced")
	t.Logf("%s: %d records in %v; %d runs of %d instances, %d SIGKILLs, %d SIGSTOP; pass-through: %d read, %d missing, %d duplicated, %d unexpected; "+
		"counts: %d updates, excess %d; sums: %d updates, excess %d; %d aborted transactions and %d fencings logged",
		o.plan.guarantee, o.plan.records, o.took.Round(time.Second), runs, len(o.slots), o.kills, o.stops,
		v.passthrough, len(v.missing), len(v.duplicated), len(v.unexpected),
		v.updates["counts"], v.excess["counts"], v.updates["sums"], v.excess["sums"], aborts, fenced)
}

// logLineAfter returns the first line of the file at path, after its
// first from bytes, that contains one of signs, or "".
func logLineAfter(path string, from int64, signs []string) string {
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) < from {
		return ""
	}
	for _, line := range strings.Split(string(b[from:]), "\n") {
		for _, s := range signs {
			if strings.Contains(line, s) {
				if i := strings.Index(line, "msg="); i >= 0 {
					line = line[i:]
				}
				return line[:min(len(line), 200)]
			}
		}
	}
	return ""
}

// countLogLines counts the lines of the files at paths that contain s.
func countLogLines(t *testing.T, paths []string, s string) int {
	n := 0
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Errorf("read log %s: %v", p, err)
			continue
		}
		n += strings.Count(string(b), s)
	}
	return n
}

var instanceLine = regexp.MustCompile(`msg="kstream: starting".* instance=(\S+)`)

// instanceIDs returns the instance id each run of s logged at its start.
func (s *ledgerSlot) instanceIDs(t *testing.T) []string {
	var ids []string
	for _, r := range s.runs {
		b, err := os.ReadFile(r.logPath)
		if err != nil {
			t.Fatalf("read log of %s: %v", r.name, err)
		}
		m := instanceLine.FindSubmatch(b)
		if m == nil {
			if r != s.cur() {
				// Killed before it logged anything (a kill can follow the
				// restart of the run it killed within milliseconds): it
				// never opened its state directory either.
				t.Logf("%s was killed before it logged its start line", r.name)
				continue
			}
			t.Fatalf("%s logged no start line with its instance id", r.name)
		}
		ids = append(ids, string(m[1]))
	}
	return ids
}

// TestExactlyOnceLedgerSurvivesKillsAndFencing runs the ledger workload
// under exactly-once through random SIGKILLs and a SIGSTOP longer than the
// session timeout: reading committed, every input has exactly one
// pass-through output, every group's last count and sum are the expected
// ones, and no committed update of a group repeats or lowers the one
// before (an effect applied twice). Each restarted instance got back its
// instance id (kept in its state directory), so its transactional ids
// fence its killed run.
func TestExactlyOnceLedgerSurvivesKillsAndFencing(t *testing.T) {
	b := kafkatest.Require(t)
	p := planLedger(t, "exactly-once")
	o := runLedger(t, b, p)
	o.summary(t)
	v := o.verdict
	if len(v.missing) > 0 || len(v.duplicated) > 0 || len(v.unexpected) > 0 {
		t.Errorf("pass-through under exactly-once: %d missing (first %v), %d duplicated (first %v), %d unexpected (first %v); want none",
			len(v.missing), firstN(v.missing, 5), len(v.duplicated), firstN(v.duplicated, 5), len(v.unexpected), firstN(v.unexpected, 3))
	}
	if v.passthrough != len(o.exp.keyOf) {
		t.Errorf("read %d pass-through records, want exactly %d", v.passthrough, len(o.exp.keyOf))
	}
	if probs := v.windows.problems(); len(probs) > 0 {
		t.Errorf("windowed counts under exactly-once: %d problems, first: %v", len(probs), firstN(probs, 8))
	}
	if len(v.joins) > 0 {
		t.Errorf("joins under exactly-once: %d problems, first: %v", len(v.joins), firstN(v.joins, 8))
	}
	t.Logf("windowed counts: %s", v.windows.summary())
	for _, agg := range []string{"counts", "sums"} {
		if w := v.wrongFinal[agg]; len(w) > 0 {
			t.Errorf("%s: %d groups end wrong under exactly-once, first: %v", agg, len(w), firstN(w, 5))
		}
		if r := v.regressions[agg]; len(r) > 0 {
			t.Errorf("%s: %d committed updates repeat or lower their group's value (a duplicated effect), first: %v", agg, len(r), firstN(r, 5))
		}
	}
	if o.kills < p.kills || o.stops != 1 {
		t.Errorf("disturbances: %d kills and %d stops, want %d and 1", o.kills, o.stops, p.kills)
	}
	if o.zombie == "" {
		// Not a failure: a continued run that held no task when the group
		// dropped it has nothing to lose and logs nothing; the outputs
		// above prove it wrote no duplicate either way.
		t.Logf("the run stopped past its session timeout logged no sign of being fenced (%q) after it was continued", fencedSigns)
	}
	for _, s := range o.slots {
		ids := s.instanceIDs(t)
		if len(slices.Compact(slices.Clone(ids))) != 1 {
			t.Errorf("%s: its runs used instance ids %v, want one id kept in its state directory", s.name, ids)
		}
		if b, err := os.ReadFile(filepath.Join(s.stateDir, o.group, "instance-id")); err != nil || strings.TrimSpace(string(b)) != ids[0] {
			t.Errorf("%s: instance-id file holds %q (err %v), want %q", s.name, b, err, ids[0])
		}
	}
}

// TestAtLeastOnceLedgerSurvivesKills runs the same workload and
// disturbances under at-least-once: nothing may be missing (every input
// has a pass-through output, every group's last count and sum are at least
// the expected ones); the duplicates are counted and reported.
func TestAtLeastOnceLedgerSurvivesKills(t *testing.T) {
	b := kafkatest.Require(t)
	p := planLedger(t, "at-least-once")
	o := runLedger(t, b, p)
	o.summary(t)
	v := o.verdict
	if len(v.missing) > 0 || len(v.unexpected) > 0 {
		t.Errorf("pass-through under at-least-once: %d missing (first %v), %d unexpected (first %v); want none",
			len(v.missing), firstN(v.missing, 5), len(v.unexpected), firstN(v.unexpected, 3))
	}
	for _, agg := range []string{"counts", "sums"} {
		for _, w := range v.wrongFinal[agg] {
			// Under at-least-once a group may end above its value (effects
			// applied twice), never below it.
			if strings.Contains(w, "unexpected") || strings.Contains(w, "present false") {
				t.Errorf("%s: %s", agg, w)
			}
		}
		if v.excess[agg] < 0 {
			t.Errorf("%s: groups end %d below the expected values in total under at-least-once", agg, -v.excess[agg])
		}
	}
	t.Logf("windowed counts under at-least-once (not judged): %s; %d problems; joins: %d problems", v.windows.summary(), len(v.windows.problems()), len(v.joins))
	t.Logf("at-least-once duplicates: %d pass-through records written more than once; counts %d and sums %d above the expected totals; %d and %d updates repeated or went back",
		len(v.duplicated), v.excess["counts"], v.excess["sums"], len(v.regressions["counts"]), len(v.regressions["sums"]))
	if o.kills < p.kills || o.stops != 1 {
		t.Errorf("disturbances: %d kills and %d stops, want %d and 1", o.kills, o.stops, p.kills)
	}
}

// TestJudgeLedgerFindsEveryFault feeds the judge of the ledger crash test
// outputs with one fault of each kind, and clean ones, so that a passing
// crash test means what it says. It needs no broker.
func TestJudgeLedgerFindsEveryFault(t *testing.T) {
	p := ledgerPlan{partitions: 2, records: 40, users: 5, groups: 3, seed: 7}
	inputs, exp := ledgerInputs(p, "in")
	pass := func(recs []*kgo.Record) []*kgo.Record {
		out := make([]*kgo.Record, len(recs))
		for i, r := range recs {
			out[i] = &kgo.Record{Topic: "pass", Key: r.Key, Value: r.Value}
		}
		return out
	}
	// agg returns the running values of each group as the app emits them
	// without a cache: one update per input.
	agg := func(topic string, sum bool) []*kgo.Record {
		run := map[string]int64{}
		var out []*kgo.Record
		for i, r := range inputs {
			g, _ := ledger.GroupOf(string(r.Key), p.groups)
			if sum {
				run[g] += ledger.Amount(i)
			} else {
				run[g]++
			}
			out = append(out, &kgo.Record{Topic: topic, Key: []byte(g), Value: mustSerialize(t, serde.Int64, run[g])})
		}
		return out
	}
	counts, sums := agg("counts", false), agg("sums", true)

	clean := judgeLedger(exp, pass(inputs), counts, sums)
	if len(clean.missing)+len(clean.duplicated)+len(clean.unexpected) > 0 || clean.passthrough != len(inputs) ||
		len(clean.wrongFinal["counts"])+len(clean.wrongFinal["sums"])+len(clean.regressions["counts"])+len(clean.regressions["sums"]) > 0 ||
		clean.excess["counts"] != 0 || clean.excess["sums"] != 0 {
		t.Fatalf("clean outputs judged faulty: %+v", clean)
	}

	lost := judgeLedger(exp, pass(inputs[1:]), counts, sums)
	if !slices.Equal(lost.missing, []string{string(inputs[0].Value)}) {
		t.Errorf("missing = %v, want [%s]", lost.missing, inputs[0].Value)
	}
	dup := judgeLedger(exp, pass(append(slices.Clone(inputs), inputs[3])), counts, sums)
	if len(dup.duplicated) != 1 || !strings.HasPrefix(dup.duplicated[0], string(inputs[3].Value)) {
		t.Errorf("duplicated = %v, want input 3 once", dup.duplicated)
	}
	odd := judgeLedger(exp, append(pass(inputs), &kgo.Record{Topic: "pass", Key: []byte("u00000"), Value: []byte("e9999999:1")}), counts, sums)
	if len(odd.unexpected) != 1 {
		t.Errorf("unexpected = %v, want one", odd.unexpected)
	}
	// A count emitted again (a duplicated effect after a restore) repeats
	// its group's value; one more count makes the final value wrong.
	again := append(slices.Clone(counts[:10]), counts[9])
	again = append(again, counts[10:]...)
	rep := judgeLedger(exp, pass(inputs), again, sums)
	if len(rep.regressions["counts"]) != 1 || len(rep.wrongFinal["counts"]) != 0 {
		t.Errorf("repeated update: regressions %v, wrong finals %v; want one regression", rep.regressions["counts"], rep.wrongFinal["counts"])
	}
	last := counts[len(counts)-1]
	over := append(slices.Clone(counts), &kgo.Record{Topic: "counts", Key: last.Key, Value: mustSerialize(t, serde.Int64, exp.counts[string(last.Key)]+1)})
	ov := judgeLedger(exp, pass(inputs), over, sums)
	if len(ov.wrongFinal["counts"]) != 1 || ov.excess["counts"] != 1 || len(ov.regressions["counts"]) != 0 {
		t.Errorf("one count too many: wrong finals %v, excess %d, regressions %v", ov.wrongFinal["counts"], ov.excess["counts"], ov.regressions["counts"])
	}
}
