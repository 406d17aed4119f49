// Package ledger is the workload of the exactly-once crash tests and
// benchmarks: a stream of payment events keyed by user, passed through
// unchanged and aggregated per group of users after a repartition.
//
//	input (key user, value event) ──MapValues(identity)──────────────> passthrough
//	   └─SelectKey(group of user)─> <app>-by-group-repartition
//	        └─GroupByKey─┬─ Count (store "counts") ─ToStream─> counts (int64)
//	                     └─ Aggregate sum of amounts (store "sums") ─ToStream─> sums (int64)
//
// Every input record has exactly one pass-through output, so a lost or
// duplicated record is visible; every group's count and sum only grow, so
// a committed update that repeats or goes backwards is a duplicated effect.
// The test computes the expected outputs from the inputs with the same
// helpers (Key, Value, GroupOf, Amount, Timestamp).
//
// With the windowed topics set, the grouped stream is also counted per
// event-time window, with final results only (EmitFinal):
//
//	└─GroupByKey─┬─ tumbling WindowSize, grace WindowGrace (store "windows") ─> windows
//	             └─ sessions SessionGap, grace SessionGrace (store "sessions") ─> sessions
//
// records for closed windows going to the late topic. Every window and
// session of a group is emitted once, with the count of its records that
// were not late.
//
// With the join topics set, it also joins, per user, its even events with
// its odd ones at most JoinWindow apart (a windowed stream-stream join, to
// pairs), and each grouped event with its group's count table (a
// stream-table join, to ranked: "<event>#<rank>", a group's events ranked
// 1..n).
package ledger

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
)

// Topics names the topics of the workload.
type Topics struct {
	Input       string
	Passthrough string
	Counts      string
	Sums        string
	// Windows, Sessions and Late, when set (all three), add the windowed
	// counts.
	Windows  string
	Sessions string
	Late     string
	// Pairs and Ranked, when set (both), add the joins.
	Pairs  string
	Ranked string
}

// The windowed counts' windows (see the package doc).
const (
	WindowSize   = 5 * time.Second
	WindowGrace  = 2 * time.Second
	SessionGap   = 3 * time.Second
	SessionGrace = time.Hour
	// WindowNode and SessionNode are the names of the windowed
	// aggregations: the error-node header of their late records.
	WindowNode  = "windows"
	SessionNode = "sessions"
)

// JoinWindow is the time difference of the joins' window: the even events
// of a user joined with its odd events at most this far apart in event
// time.
const JoinWindow = 500 * time.Millisecond

// Base is the event time of event 0: three hours before the program
// started, on the hour, so that every event time (the flush records of the
// crash test come an hour after the others) is in the past, as brokers
// expect (log.message.timestamp.after.max.ms), and well within the topics'
// retention, which goes by record timestamps.
var Base = time.Now().Truncate(time.Hour).Add(-3 * time.Hour)

// Timestamp returns the event time of event i: 2ms apart, with a pause of
// 10s after every 2000 events, so that each group's events form sessions.
func Timestamp(i int) time.Time {
	return Base.Add(time.Duration(i)*2*time.Millisecond + time.Duration(i/2000)*10*time.Second)
}

// RepartitionTopic returns the full name of the workload's repartition
// topic for application id appID.
func RepartitionTopic(appID string) string { return appID + "-by-group-repartition" }

// Key returns the key of user u's events.
func Key(u int) string { return fmt.Sprintf("u%05d", u) }

// GroupOf returns the group of the user whose events have key k: the
// user's number modulo groups.
func GroupOf(k string, groups int) (string, error) {
	u, err := strconv.Atoi(strings.TrimPrefix(k, "u"))
	if err != nil || !strings.HasPrefix(k, "u") || u < 0 {
		return "", fmt.Errorf("ledger: bad user key %q", k)
	}
	return fmt.Sprintf("g%03d", u%groups), nil
}

// Amount returns the amount of event i: between 1 and 100, so that sums,
// like counts, grow with every event.
func Amount(i int) int64 { return 1 + int64(i*7919%100) }

// Value returns the value of event i: "e<i>:<amount>".
func Value(i int) string { return fmt.Sprintf("e%07d:%d", i, Amount(i)) }

// ParseValue returns the event number and amount of a value made by Value.
func ParseValue(v string) (int, int64, error) {
	id, amount, ok := strings.Cut(v, ":")
	if !ok || !strings.HasPrefix(id, "e") {
		return 0, 0, fmt.Errorf("ledger: bad event %q", v)
	}
	i, err := strconv.Atoi(id[1:])
	if err != nil {
		return 0, 0, fmt.Errorf("ledger: bad event %q: %w", v, err)
	}
	a, err := strconv.ParseInt(amount, 10, 64)
	if err != nil || a < 1 {
		return 0, 0, fmt.Errorf("ledger: bad amount in %q", v)
	}
	return i, a, nil
}

// Topology builds the workload over topics with groups user groups.
// onRecord, if not nil, is called for every input record before it is
// processed (the crash program uses it to say it is ready). A value or key
// that does not parse panics in the node, which fails the App (the default
// processing error handler): the workload has no bad records.
func Topology(tp Topics, groups int, onRecord func()) (*kstream.Topology, error) {
	b := kstream.NewBuilder()
	in := kstream.From(b, tp.Input, serde.String, serde.String, kstream.Named("input"))
	kstream.MapValues(in, func(v string) string {
		if onRecord != nil {
			onRecord()
		}
		return v
	}, kstream.Named("passthrough")).To(tp.Passthrough, serde.String, serde.String, kstream.Named("passthrough-out"))

	byGroup := kstream.Repartition(kstream.SelectKey(in, func(k, _ string) string {
		g, err := GroupOf(k, groups)
		if err != nil {
			panic(err)
		}
		return g
	}, kstream.Named("select-group")), serde.String, serde.String, kstream.Named("by-group"))
	grouped := kstream.GroupByKey(byGroup, serde.String, serde.String)
	kstream.Count(grouped, kstream.StoreName("counts")).
		ToStream(kstream.Named("counts-stream")).
		To(tp.Counts, serde.String, serde.Int64, kstream.Named("counts-out"))
	kstream.Aggregate(grouped, func() int64 { return 0 }, func(_ string, v string, sum int64) int64 {
		_, a, err := ParseValue(v)
		if err != nil {
			panic(err)
		}
		return sum + a
	}, serde.Int64, kstream.StoreName("sums")).
		ToStream(kstream.Named("sums-stream")).
		To(tp.Sums, serde.String, serde.Int64, kstream.Named("sums-out"))
	if tp.Windows != "" || tp.Sessions != "" || tp.Late != "" {
		if tp.Windows == "" || tp.Sessions == "" || tp.Late == "" {
			return nil, fmt.Errorf("ledger: the windowed counts need the windows, sessions and late topics (got %q, %q, %q)",
				tp.Windows, tp.Sessions, tp.Late)
		}
		kstream.WindowedCount(kstream.WindowedBy(grouped, kstream.Tumbling(WindowSize, WindowGrace)),
			kstream.EmitFinal(), kstream.StoreName("windows"), kstream.Named(WindowNode), kstream.LateRecordsTo(tp.Late)).
			ToStream(kstream.Named("windows-stream")).
			To(tp.Windows, kstream.TimeWindowedSerde(serde.String, WindowSize), serde.Int64, kstream.Named("windows-out"))
		kstream.WindowedCount(kstream.WindowedBy(grouped, kstream.Session(SessionGap, SessionGrace)),
			kstream.EmitFinal(), kstream.StoreName("sessions"), kstream.Named(SessionNode), kstream.LateRecordsTo(tp.Late)).
			ToStream(kstream.Named("sessions-stream")).
			To(tp.Sessions, kstream.SessionWindowedSerde(serde.String), serde.Int64, kstream.Named("sessions-out"))
	}
	if tp.Pairs != "" || tp.Ranked != "" {
		if tp.Pairs == "" || tp.Ranked == "" {
			return nil, fmt.Errorf("ledger: the joins need the pairs and ranked topics (got %q, %q)", tp.Pairs, tp.Ranked)
		}
		parity := func(v string) int {
			i, _, err := ParseValue(v)
			if err != nil {
				panic(err)
			}
			return i % 2
		}
		evens := in.Filter(func(_ string, v string) bool { return parity(v) == 0 }, kstream.Named("evens"))
		odds := in.Filter(func(_ string, v string) bool { return parity(v) == 1 }, kstream.Named("odds"))
		kstream.Join(evens, odds, func(_ string, e, o string) string { return e + "+" + o },
			kstream.JoinTimeDifference(JoinWindow, time.Hour),
			kstream.StreamJoined[string, string, string]{Key: serde.String, Left: serde.String, Right: serde.String},
			kstream.Named("pairs")).To(tp.Pairs, serde.String, serde.String, kstream.Named("pairs-out"))
		// Each grouped event looks up its group's count, which the Count
		// above has already updated for it: a group's events get the ranks
		// 1..n, each once.
		counts := kstream.Count(grouped, kstream.StoreName("ranks"))
		kstream.JoinTable(byGroup, counts, func(_ string, v string, n int64) string { return v + "#" + strconv.FormatInt(n, 10) },
			kstream.StreamJoined[string, string, int64]{Key: serde.String, Left: serde.String, Right: serde.Int64},
			kstream.Named("rank")).To(tp.Ranked, serde.String, serde.String, kstream.Named("ranked-out"))
	}
	return b.Build()
}
