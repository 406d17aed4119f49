package integration

// Streamwork's aggregations, windows, suppression, stream-stream joins and
// table joins (stream-table, table-table, foreign-key) against Kafka
// Streams' own output: ksref/testdata/*.golden hold what Kafka Streams'
// TopologyTestDriver produced for each scenario below (ksref/run
// regenerates them with Maven), and these tests run the same scenarios
// through kstreamtest and require the same records, in the same order: key,
// window, value, timestamp, tombstones — except where a scenario records a
// deliberate difference (ksrefDifference), which the test checks both sides
// of. They need no broker and no Java: they read the golden files only.

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/kstream/kstreamtest"
	"github.com/streamwork-go/streamwork/serde"
)

const ksrefDir = "ksref/testdata"

// ksrefInput is one input record of a scenario: piped to its topic in
// order. Value is an int64 (an untyped constant in a literal is an int,
// taken as int64), a string for the scenarios with String values, or nil
// for a tombstone.
type ksrefInput struct {
	Key   string
	Value any
	TS    int64
}

// String is the record as a golden file's "# input" line has it.
func (r ksrefInput) String() string {
	v := "null"
	if r.Value != nil {
		v = fmt.Sprint(r.Value)
	}
	return fmt.Sprintf("%s %s %d", r.Key, v, r.TS)
}

// ksrefPiped is one input record of a join scenario: piped, in order with
// the others, to Topic ("left" or "right", or a table join scenario's own
// topics). Value is a string or nil for a tombstone.
type ksrefPiped struct {
	Topic string
	ksrefInput
}

// String is the record as a golden file's "# input" line has it.
func (r ksrefPiped) String() string { return r.Topic + " " + r.ksrefInput.String() }

// ksrefLeft and ksrefRight make inputs of a join scenario, to "left" and
// "right"; value is a string or nil for a tombstone.
func ksrefLeft(key string, value any, ts int64) ksrefPiped {
	return ksrefPiped{"left", ksrefInput{key, value, ts}}
}

func ksrefRight(key string, value any, ts int64) ksrefPiped {
	return ksrefPiped{"right", ksrefInput{key, value, ts}}
}

// ksrefTo makes an input of a scenario with topics of its own, to topic;
// value is a string or nil for a tombstone.
func ksrefTo(topic, key string, value any, ts int64) ksrefPiped {
	return ksrefPiped{topic, ksrefInput{key, value, ts}}
}

// ksrefOnes makes inputs of value 1 (for counts) from key, timestamp pairs.
func ksrefOnes(keyTS ...any) []ksrefInput {
	var res []ksrefInput
	for i := 0; i < len(keyTS); i += 2 {
		res = append(res, ksrefInput{Key: keyTS[i].(string), Value: int64(1), TS: int64(keyTS[i+1].(int))})
	}
	return res
}

// ksrefAgg names the aggregation of a scenario.
type ksrefAgg int

const (
	// ksrefCount: WindowedCount (Kafka Streams' count()).
	ksrefCount ksrefAgg = iota
	// ksrefList: WindowedAggregate of the values, comma-separated in
	// arrival order ("1,2,3").
	ksrefList
)

// ksrefScenario is one golden file's scenario, as the Java harness
// (ksref/src/main/java/streamwork/ksref/Golden.java) builds it. A windowed
// scenario reads "in", groups by key, windows with windows, aggregates with
// agg (opts on the aggregation) and, with suppress, goes through
// SuppressUntilWindowCloses(BufferLimit{}); any other scenario has run,
// which runs it and returns its output as golden lines. A join scenario's
// inputs are piped instead of inputs: to two topics, in the order given.
type ksrefScenario struct {
	name     string
	windows  kstream.Windows
	agg      ksrefAgg
	opts     []kstream.NodeOpt
	suppress bool
	run      func(t *testing.T, sc ksrefScenario) []string
	inputs   []ksrefInput
	piped    []ksrefPiped
	// differs, when set, is a deliberate difference: Streamwork's output
	// is differs.streamwork, not the golden file's.
	differs *ksrefDifference
}

// ksrefDifference records a scenario where Streamwork deliberately
// differs from Kafka Streams (see "Deliberate differences" in
// ksref/README.md): the test requires Streamwork to give streamwork and
// the golden file to hold kafkaStreams, so that a Kafka Streams release
// that changes its output flags the note as stale.
type ksrefDifference struct {
	streamwork   []string
	kafkaStreams []string
}

const ksrefMS = time.Millisecond

func ksrefScenarios() []ksrefScenario {
	// The same records, out of order, through a left and an outer join:
	// b@8000, b@6000 and c@5000 arrive after stream time 12000 but within
	// the grace (their windows close at 16000, 14000 and 13000); left
	// a@11000 arrives at stream time 20000, past its window's close at
	// 19000, while right a@12000 is still in the join's store.
	joinOutOfOrder := []ksrefPiped{ksrefLeft("a", "L1", 10000), ksrefRight("a", "R1", 12000), ksrefLeft("b", "L2", 8000),
		ksrefRight("b", "R2", 6000), ksrefLeft("c", "L3", 5000), ksrefRight("b", "R5", 9000), ksrefRight("d", "R3", 11000),
		ksrefLeft("a", "L4", 20000), ksrefLeft("a", "L5", 11000), ksrefRight("a", "R4", 14000), ksrefLeft("z", "Z", 40000)}
	streamTable := []ksrefPiped{ksrefTo("prices", "a", "1", 0), ksrefTo("orders", "a", "x", 5), ksrefTo("prices", "a", "2", 10),
		ksrefTo("orders", "a", "y", 15), ksrefTo("orders", "b", "z", 20), ksrefTo("prices", "a", nil, 25), ksrefTo("orders", "a", "w", 30)}
	tableTable := []ksrefPiped{ksrefTo("l", "a", "L1", 1), ksrefTo("r", "a", "R1", 2), ksrefTo("r", "b", "R2", 3), ksrefTo("l", "a", "L2", 4),
		ksrefTo("r", "a", nil, 5), ksrefTo("l", "a", nil, 6), ksrefTo("r", "b", nil, 7), ksrefTo("l", "c", nil, 8)}
	fkJoin := []ksrefPiped{ksrefTo("products", "p1", "Pen", 1), ksrefTo("orders", "o1", "p1", 2), ksrefTo("orders", "o2", "p2", 3),
		ksrefTo("products", "p2", "Ink", 4), ksrefTo("orders", "o1", "p2", 5), ksrefTo("products", "p1", "Pencil", 6),
		ksrefTo("products", "p2", nil, 7), ksrefTo("orders", "o1", nil, 8)}
	slidingEarly := []ksrefInput{{"a", 1, 1000}, {"a", 2, 3000}, {"a", 3, 2000}, {"a", 4, 7000}, {"a", 5, 6500}}
	tumblingFinal := ksrefOnes("a", 1000, "b", 2000, "a", 4000, "a", 6999, "a", 3000, "b", 7000, "a", 100, "a", 7001)
	sessionFinal := ksrefOnes("a", 0, "a", 4000, "b", 9000, "b", 9001, "a", 9000, "b", 30000)
	return []ksrefScenario{
		{name: "tumbling", windows: kstream.Tumbling(5000*ksrefMS, kstream.NoGrace),
			inputs: ksrefOnes("a", 0, "a", 4999, "a", 5000)},
		{name: "hopping", windows: kstream.Hopping(5000*ksrefMS, 3000*ksrefMS, kstream.NoGrace),
			inputs: ksrefOnes("a", 4000, "a", 6500)},
		{name: "tumbling-max-timestamp", windows: kstream.Tumbling(10000*ksrefMS, 10000*ksrefMS),
			inputs: ksrefOnes("a", 7000, "a", 2000)},
		{name: "tumbling-late-boundary", windows: kstream.Tumbling(5000*ksrefMS, 1000*ksrefMS),
			inputs: ksrefOnes("a", 5999, "a", 4999, "a", 6000, "a", 4999)},
		{name: "sliding-kip450", windows: kstream.Sliding(5000*ksrefMS, 30000*ksrefMS), agg: ksrefList,
			inputs: []ksrefInput{{"a", 1, 8000}, {"a", 2, 9200}, {"a", 3, 12400}}},
		{name: "sliding-early-out-of-order", windows: kstream.Sliding(5000*ksrefMS, 30000*ksrefMS), agg: ksrefList,
			inputs: slidingEarly},
		{name: "session-merge-grace10000", windows: kstream.Session(5000*ksrefMS, 10000*ksrefMS),
			inputs: ksrefOnes("a", 0, "a", 10000, "a", 5000)},
		{name: "session-merge-grace0", windows: kstream.Session(5000*ksrefMS, kstream.NoGrace),
			inputs: ksrefOnes("a", 0, "a", 10000, "a", 5000)},
		{name: "session-out-of-order", windows: kstream.Session(5000*ksrefMS, 10000*ksrefMS),
			inputs: ksrefOnes("a", 0, "b", 1000, "a", 3000, "a", 2000, "b", 20000, "a", 30000)},
		{name: "emit-final-tumbling", windows: kstream.Tumbling(5000*ksrefMS, 2000*ksrefMS), opts: []kstream.NodeOpt{kstream.EmitFinal()},
			inputs: tumblingFinal},

		// Non-windowed aggregations: a result's timestamp is the largest
		// of the aggregate's records' (and, for a regrouped table, of the
		// rows' updates that reached the group).
		{name: "count-max-timestamp", inputs: ksrefOnes("a", 7000, "a", 2000, "a", 9000),
			run: func(t *testing.T, sc ksrefScenario) []string {
				return ksrefDrive(t, sc.inputs, "in", serde.Int64, serde.Int64, func(b *kstream.Builder) {
					in := kstream.From(b, "in", serde.String, serde.Int64)
					kstream.Count(kstream.GroupByKey(in, serde.String, serde.Int64)).ToStream().To("out", serde.String, serde.Int64)
				})
			}},
		// A row moving between groups: out of its old group, into its new.
		{name: "table-groupby-count", inputs: []ksrefInput{{"ann", "oslo", 5000}, {"bob", "oslo", 3000}, {"ann", "rome", 4000}},
			run: ksrefUsersByCity},
		// A row updated within its group: one result (KIP-904), not a
		// subtraction and an addition.
		{name: "table-groupby-count-same-group", inputs: []ksrefInput{{"ann", "oslo", 5000}, {"bob", "oslo", 3000}, {"bob", "oslo", 6000}},
			run: ksrefUsersByCity},

		// Suppression.
		{name: "suppress-time-limit",
			inputs: []ksrefInput{{"a", 1, 0}, {"a", 2, 3000}, {"b", 1, 4000}, {"a", 3, 10000}, {"a", 4, 12000}, {"b", nil, 13000}, {"x", 1, 25000}},
			run: func(t *testing.T, sc ksrefScenario) []string {
				return ksrefDrive(t, sc.inputs, "in", serde.Int64, serde.Int64, func(b *kstream.Builder) {
					kstream.SuppressUntilTimeLimit(kstream.TableFrom(b, "in", serde.String, serde.Int64), 10*time.Second, kstream.BufferLimit{}).
						ToStream().To("out", serde.String, serde.Int64)
				})
			}},
		{name: "suppress-window-closes-tumbling", windows: kstream.Tumbling(5000*ksrefMS, 2000*ksrefMS), suppress: true,
			inputs: tumblingFinal},

		// Emit-final (KIP-825) on sliding windows.
		{name: "sliding-emit-final", windows: kstream.Sliding(5000*ksrefMS, kstream.NoGrace), agg: ksrefList,
			opts:   []kstream.NodeOpt{kstream.EmitFinal()},
			inputs: []ksrefInput{{"a", 1, 1000}, {"a", 2, 6000}, {"a", 3, 12000}, {"a", 4, 20000}}},

		// Final session results, with EmitFinal and with suppression:
		// a@9000 is not late (its session ends at 9000, not before stream
		// time 9001 - grace - gap), but a [0,4000] is final by then (and
		// gone from the store), so a@9000 starts a session of its own.
		{name: "session-emit-final", windows: kstream.Session(5000*ksrefMS, kstream.NoGrace), opts: []kstream.NodeOpt{kstream.EmitFinal()},
			inputs: sessionFinal},
		{name: "session-suppress", windows: kstream.Session(5000*ksrefMS, kstream.NoGrace), suppress: true,
			inputs: sessionFinal},

		// Stream-stream joins: the scenarios of kstream/join_dsl_test.go
		// (TestStreamStreamInnerJoin, ...LeftJoin, ...OuterJoin,
		// TestStreamSelfJoin), and out-of-order records through a left and
		// an outer join. The output value is "left+right", "nil" for a
		// missing side.
		{name: "join-inner",
			piped: []ksrefPiped{ksrefLeft("a", "L1", 1000), ksrefRight("a", "R1", 5000), ksrefRight("a", "R2", 20000),
				ksrefLeft("a", "L2", 15000), ksrefRight("b", "R3", 15000), ksrefLeft("a", nil, 16000)},
			run: ksrefJoin(func(l, r kstream.Stream[string, string]) kstream.Stream[string, string] {
				return kstream.Join(l, r, ksrefInnerJoiner, kstream.JoinTimeDifference(10000*ksrefMS, kstream.NoGrace), ksrefJoined)
			})},
		{name: "join-left",
			piped: []ksrefPiped{ksrefLeft("a", "L1", 1000), ksrefLeft("b", "L2", 2000), ksrefRight("a", "R1", 11000),
				ksrefRight("c", "R9", 13000), ksrefRight("c", "R9", 14001), ksrefLeft("x", "L3", 1000)},
			run: ksrefJoin(func(l, r kstream.Stream[string, string]) kstream.Stream[string, string] {
				return kstream.LeftJoin(l, r, ksrefLeftJoiner, kstream.JoinTimeDifference(10000*ksrefMS, 2000*ksrefMS), ksrefJoined)
			})},
		{name: "join-outer",
			piped: []ksrefPiped{ksrefLeft("a", "L1", 1000), ksrefRight("b", "R1", 2000), ksrefRight("a", "R2", 4000),
				ksrefLeft("z", "Z", 20000)},
			run: ksrefJoin(func(l, r kstream.Stream[string, string]) kstream.Stream[string, string] {
				return kstream.OuterJoin(l, r, ksrefOuterJoiner,
					kstream.JoinTimeDifference(5000*ksrefMS, kstream.NoGrace).After(2000*ksrefMS), ksrefJoined)
			})},
		{name: "join-self", piped: []ksrefPiped{ksrefLeft("a", "1", 0), ksrefLeft("a", "2", 1000)},
			run: ksrefJoin(func(l, _ kstream.Stream[string, string]) kstream.Stream[string, string] {
				return kstream.Join(l, l, ksrefInnerJoiner, kstream.JoinTimeDifference(5000*ksrefMS, kstream.NoGrace), ksrefJoined)
			})},
		// Deliberately not Kafka Streams' order: c@5000 arrives at stream
		// time 12000, after its window ([0, 10000]) but inside its grace
		// (until 13000). Kafka Streams emits it unmatched at once; a right
		// c@6000 arriving before 13000 would still join it, so that result
		// could be spurious. Streamwork holds it until its grace has
		// passed (the rule: never a spurious unmatched result) and
		// emits it with the next record that moves stream time past it.
		// Same records, another order.
		{name: "join-left-out-of-order", piped: joinOutOfOrder,
			run: ksrefJoin(func(l, r kstream.Stream[string, string]) kstream.Stream[string, string] {
				return kstream.LeftJoin(l, r, ksrefLeftJoiner, kstream.JoinTimeDifference(5000*ksrefMS, 3000*ksrefMS), ksrefJoined)
			}), differs: &ksrefDifference{
				streamwork: []string{"a L1+R1 12000", "b L2+R2 8000", "b L2+R5 9000", "c L3+nil 5000", "a L5+R1 12000",
					"a L1+R4 14000", "a L5+R4 14000", "a L4+nil 20000"},
				kafkaStreams: []string{"a L1+R1 12000", "b L2+R2 8000", "c L3+nil 5000", "b L2+R5 9000", "a L5+R1 12000",
					"a L1+R4 14000", "a L5+R4 14000", "a L4+nil 20000"},
			}},
		{name: "join-outer-out-of-order", piped: joinOutOfOrder,
			run: ksrefJoin(func(l, r kstream.Stream[string, string]) kstream.Stream[string, string] {
				return kstream.OuterJoin(l, r, ksrefOuterJoiner, kstream.JoinTimeDifference(5000*ksrefMS, 3000*ksrefMS), ksrefJoined)
			}), differs: &ksrefDifference{
				streamwork: []string{"a L1+R1 12000", "b L2+R2 8000", "b L2+R5 9000", "c L3+nil 5000", "d nil+R3 11000",
					"a L5+R1 12000", "a L1+R4 14000", "a L5+R4 14000", "a L4+nil 20000"},
				kafkaStreams: []string{"a L1+R1 12000", "b L2+R2 8000", "c L3+nil 5000", "b L2+R5 9000", "d nil+R3 11000",
					"a L5+R1 12000", "a L1+R4 14000", "a L5+R4 14000", "a L4+nil 20000"},
			}},

		// Stream-table joins: TestStreamTableJoin and
		// TestStreamJoinsAggregationTable of kstream/join_dsl_test.go, on
		// their topics.
		{name: "stream-table-join-inner", piped: streamTable,
			run: ksrefTopics(func(b *kstream.Builder) kstream.Stream[string, string] {
				return kstream.JoinTable(kstream.From(b, "orders", serde.String, serde.String), kstream.TableFrom(b, "prices", serde.String, serde.String),
					ksrefInnerJoiner, ksrefJoined)
			})},
		{name: "stream-table-join-left", piped: streamTable,
			run: ksrefTopics(func(b *kstream.Builder) kstream.Stream[string, string] {
				return kstream.LeftJoinTable(kstream.From(b, "orders", serde.String, serde.String), kstream.TableFrom(b, "prices", serde.String, serde.String),
					ksrefLeftJoiner, ksrefJoined)
			})},
		{name: "stream-table-join-count",
			piped: []ksrefPiped{ksrefTo("clicks", "u", "c1", 0), ksrefTo("clicks", "u", "c2", 1), ksrefTo("views", "u", "home", 2)},
			run: ksrefTopics(func(b *kstream.Builder) kstream.Stream[string, string] {
				counts := kstream.Count(kstream.GroupByKey(kstream.From(b, "clicks", serde.String, serde.String), serde.String, serde.String))
				return kstream.JoinTable(kstream.From(b, "views", serde.String, serde.String), counts,
					func(_ string, v string, n int64) string { return fmt.Sprintf("%s after %d clicks", v, n) },
					kstream.StreamJoined[string, string, int64]{Key: serde.String, Left: serde.String, Right: serde.Int64})
			})},

		// Table-table joins: TestTableTableJoins. Its timestamps only grow,
		// so a result's timestamp, the triggering update's in Streamwork,
		// is also the later of both sides' (Kafka Streams').
		{name: "table-table-join-inner", piped: tableTable,
			run: ksrefTables("l", "r", func(l, r kstream.Table[string, string]) kstream.Table[string, string] {
				return kstream.TableJoin(l, r, ksrefInnerJoiner)
			})},
		{name: "table-table-join-left", piped: tableTable,
			run: ksrefTables("l", "r", func(l, r kstream.Table[string, string]) kstream.Table[string, string] {
				return kstream.TableLeftJoin(l, r, ksrefLeftJoiner)
			})},
		{name: "table-table-join-outer", piped: tableTable,
			run: ksrefTables("l", "r", func(l, r kstream.Table[string, string]) kstream.Table[string, string] {
				return kstream.TableOuterJoin(l, r, ksrefOuterJoiner)
			})},

		// Updates older than the other side's row: a result's timestamp is
		// the later of the update's and the other row's.
		{name: "table-table-join-outer-timestamps",
			piped: []ksrefPiped{ksrefTo("l", "a", "L1", 10), ksrefTo("r", "a", "R1", 5), ksrefTo("l", "b", "L2", 8),
				ksrefTo("r", "b", "R2", 20), ksrefTo("l", "a", "L3", 15), ksrefTo("r", "a", nil, 2), ksrefTo("l", "b", nil, 1)},
			run: ksrefTables("l", "r", func(l, r kstream.Table[string, string]) kstream.Table[string, string] {
				return kstream.TableOuterJoin(l, r, ksrefOuterJoiner)
			})},

		// Foreign-key joins: TestForeignKeyJoins (an order's value is its
		// product's key).
		{name: "fk-join-inner", piped: fkJoin,
			run: ksrefTables("orders", "products", func(o, p kstream.Table[string, string]) kstream.Table[string, string] {
				return kstream.ForeignKeyJoin(o, p, ksrefProductOf, ksrefInnerJoiner)
			})},
		{name: "fk-join-left", piped: fkJoin,
			run: ksrefTables("orders", "products", func(o, p kstream.Table[string, string]) kstream.Table[string, string] {
				return kstream.ForeignKeyLeftJoin(o, p, ksrefProductOf, ksrefLeftJoiner)
			})},
	}
}

var ksrefJoined = kstream.StreamJoined[string, string, string]{Key: serde.String, Left: serde.String, Right: serde.String}

// ksrefShow is a join side's value, "nil" for a missing one.
func ksrefShow(v *string) string {
	if v == nil {
		return "nil"
	}
	return *v
}

func ksrefInnerJoiner(_ string, a, b string) string        { return a + "+" + b }
func ksrefLeftJoiner(_ string, a string, b *string) string { return a + "+" + ksrefShow(b) }
func ksrefOuterJoiner(_ string, a, b *string) string       { return ksrefShow(a) + "+" + ksrefShow(b) }

// ksrefJoin runs a join scenario: join joins the streams of "left" and
// "right" (String keys and values), and its results go to "out". (A
// self-join ignores "right", which then has no records.)
func ksrefJoin(join func(l, r kstream.Stream[string, string]) kstream.Stream[string, string]) func(*testing.T, ksrefScenario) []string {
	return func(t *testing.T, sc ksrefScenario) []string {
		return ksrefDrivePiped(t, sc.piped, serde.String, serde.String, func(b *kstream.Builder) {
			l := kstream.From(b, "left", serde.String, serde.String)
			r := kstream.From(b, "right", serde.String, serde.String)
			join(l, r).To("out", serde.String, serde.String)
		})
	}
}

// ksrefTopics runs a scenario of topics of its own (String keys and
// values, its inputs naming them): build returns the stream that goes to
// "out".
func ksrefTopics(build func(b *kstream.Builder) kstream.Stream[string, string]) func(*testing.T, ksrefScenario) []string {
	return func(t *testing.T, sc ksrefScenario) []string {
		return ksrefDrivePiped(t, sc.piped, serde.String, serde.String, func(b *kstream.Builder) {
			build(b).To("out", serde.String, serde.String)
		})
	}
}

// ksrefTables runs a join of two tables, of topics left and right (String
// keys and values): join's table goes to "out", a deleted row as a
// tombstone.
func ksrefTables(left, right string, join func(l, r kstream.Table[string, string]) kstream.Table[string, string]) func(*testing.T, ksrefScenario) []string {
	return ksrefTopics(func(b *kstream.Builder) kstream.Stream[string, string] {
		return join(kstream.TableFrom(b, left, serde.String, serde.String), kstream.TableFrom(b, right, serde.String, serde.String)).ToStream()
	})
}

// ksrefProductOf is the foreign key of an order: its value, a product's key.
func ksrefProductOf(_ string, product string) string { return product }

// ksrefUsersByCity runs the users scenarios: the table of users' cities
// ("users", String values), regrouped by city, counted.
func ksrefUsersByCity(t *testing.T, sc ksrefScenario) []string {
	return ksrefDrive(t, sc.inputs, "users", serde.String, serde.Int64, func(b *kstream.Builder) {
		users := kstream.TableFrom(b, "users", serde.String, serde.String)
		byCity := kstream.TableGroupBy(users, func(user, city string) (string, string) { return city, user }, serde.String, serde.String)
		kstream.TableCount(byCity).ToStream().To("out", serde.String, serde.Int64)
	})
}

// ksrefGolden is a parsed golden file: the inputs it was made from (its
// "# input" lines) and its output lines, "key start end value timestamp"
// (windowed) or "key value timestamp".
type ksrefGolden struct {
	inputs  []string
	outputs []string
}

func readKSRefGolden(t *testing.T, name string) ksrefGolden {
	t.Helper()
	f, err := os.Open(filepath.Join(ksrefDir, name+".golden"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var g ksrefGolden
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "# input "):
			g.inputs = append(g.inputs, strings.TrimPrefix(line, "# input "))
		case strings.HasPrefix(line, "#"), strings.TrimSpace(line) == "":
		default:
			g.outputs = append(g.outputs, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return g
}

// ksrefRun runs the scenario's inputs through WindowedBy(windows) and
// build (and SuppressUntilWindowCloses if sc.suppress), and returns the
// results as golden lines.
func ksrefRun[A any](t *testing.T, sc ksrefScenario, as serde.Serde[A],
	build func(kstream.WindowedStream[string, int64]) kstream.Table[kstream.Windowed[string], A]) []string {
	t.Helper()
	return ksrefDrive(t, sc.inputs, "in", serde.Int64, as, func(b *kstream.Builder) {
		in := kstream.From(b, "in", serde.String, serde.Int64)
		table := build(kstream.WindowedBy(kstream.GroupByKey(in, serde.String, serde.Int64), sc.windows))
		if sc.suppress {
			table = kstream.SuppressUntilWindowCloses(table, kstream.BufferLimit{})
		}
		kstream.SelectKey(table.ToStream(), func(k kstream.Windowed[string], _ A) string {
			return fmt.Sprintf("%s %d %d", k.Key, k.Start, k.End)
		}).To("out", serde.String, as)
	})
}

// ksrefDrive builds a topology with build, which must write String keys
// and out values to "out"; pipes inputs, in order, to topic (values vs; a
// nil value as a tombstone) with the record cache off; and returns what
// reached "out" as golden lines, "key value timestamp" ("null" for a
// tombstone).
func ksrefDrive[V, O any](t *testing.T, inputs []ksrefInput, topic string, vs serde.Serde[V], out serde.Serde[O],
	build func(b *kstream.Builder)) []string {
	t.Helper()
	piped := make([]ksrefPiped, len(inputs))
	for i, r := range inputs {
		piped[i] = ksrefPiped{topic, r}
	}
	return ksrefDrivePiped(t, piped, vs, out, build)
}

// ksrefDrivePiped is ksrefDrive for inputs to several topics (values vs,
// all of them): each input is piped to its own topic, in order.
func ksrefDrivePiped[V, O any](t *testing.T, inputs []ksrefPiped, vs serde.Serde[V], out serde.Serde[O],
	build func(b *kstream.Builder)) []string {
	t.Helper()
	b := kstream.NewBuilder()
	build(b)
	topo, err := b.Build()
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	d, err := kstreamtest.New(topo, kstream.CacheMaxBytes(0))
	if err != nil {
		t.Fatalf("kstreamtest.New: %v", err)
	}
	defer func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	pins := map[string]*kstreamtest.InputTopic[string, V]{}
	for _, r := range inputs {
		pin := pins[r.Topic]
		if pin == nil {
			pin = kstreamtest.Input(d, r.Topic, serde.String, vs)
			pins[r.Topic] = pin
		}
		var err error
		switch v := r.Value.(type) {
		case nil:
			err = pin.PipeTombstone(r.Key, time.UnixMilli(r.TS))
		case int:
			err = pin.Pipe(r.Key, any(int64(v)).(V), time.UnixMilli(r.TS))
		default:
			err = pin.Pipe(r.Key, v.(V), time.UnixMilli(r.TS))
		}
		if err != nil {
			t.Fatalf("pipe %v: %v", r, err)
		}
	}
	recs, err := kstreamtest.Output(d, "out", serde.String, out).Records()
	if err != nil {
		t.Fatal(err)
	}
	lines := make([]string, len(recs))
	for i, r := range recs {
		v := "null"
		if !r.Tombstone {
			v = fmt.Sprint(r.Value)
		}
		lines[i] = fmt.Sprintf("%s %s %d", r.Key, v, r.Timestamp.UnixMilli())
	}
	return lines
}

func ksrefListAgg(_ string, v int64, agg string) string {
	if agg != "" {
		agg += ","
	}
	return agg + strconv.FormatInt(v, 10)
}

// ksrefCompare fails t unless got is want, record for record, and shows
// both in full when not.
func ksrefCompare(t *testing.T, got, want []string) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	t.Error("Streamwork's output differs from Kafka Streams' ([key start end | key] value timestamp):\n" +
		ksrefSideBySide("streamwork", got, "kafka streams", want))
}

// ksrefSideBySide shows a and b line by line, marking the lines that differ.
func ksrefSideBySide(aName string, a []string, bName string, b []string) string {
	var sb strings.Builder
	for i := range max(len(a), len(b)) {
		x, y := "-", "-"
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		mark := "  "
		if x != y {
			mark = "!="
		}
		fmt.Fprintf(&sb, "  %2d  %s %-28s %s  %s %s\n", i, aName, x, mark, bName, y)
	}
	return sb.String()
}

// ksrefCheck requires got to be the scenario's expected output: the golden
// file's, or for a deliberate difference Streamwork's own (and then the
// golden file must still hold the Kafka Streams output the difference was
// written against; both are shown side by side).
func ksrefCheck(t *testing.T, sc ksrefScenario, got []string, g ksrefGolden) {
	t.Helper()
	if sc.differs == nil {
		ksrefCompare(t, got, g.outputs)
		return
	}
	if !slices.Equal(g.outputs, sc.differs.kafkaStreams) {
		t.Errorf("Kafka Streams' output is no longer what the deliberate difference was written against: review it "+
			"(ksref_test.go, ksref/README.md):\n%s", ksrefSideBySide("golden file", g.outputs, "recorded", sc.differs.kafkaStreams))
	}
	if !slices.Equal(got, sc.differs.streamwork) {
		t.Errorf("Streamwork's output is not its expected one (a deliberate difference from Kafka Streams):\n%s",
			ksrefSideBySide("streamwork", got, "expected", sc.differs.streamwork))
	}
	t.Logf("deliberate difference from Kafka Streams (see ksref/README.md, \"Deliberate differences\"):\n%s",
		ksrefSideBySide("streamwork", got, "kafka streams", g.outputs))
}

// TestKSRefWindows runs each scenario (joins too) and requires Kafka Streams' output
// (Streamwork's own where a scenario records a deliberate difference).
// Session scenarios run twice: with WindowedCount and with a count made
// with SessionAggregate.
func TestKSRefWindows(t *testing.T) {
	for _, sc := range ksrefScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			g := readKSRefGolden(t, sc.name)
			var in []string
			for _, r := range sc.inputs {
				in = append(in, r.String())
			}
			for _, r := range sc.piped {
				in = append(in, r.String())
			}
			if !slices.Equal(in, g.inputs) {
				t.Fatalf("the golden file was made from other inputs:\n got %q\nwant %q", g.inputs, in)
			}
			switch {
			case sc.run != nil:
				ksrefCheck(t, sc, sc.run(t, sc), g)
			case sc.agg == ksrefCount:
				got := ksrefRun(t, sc, serde.Int64, func(w kstream.WindowedStream[string, int64]) kstream.Table[kstream.Windowed[string], int64] {
					return kstream.WindowedCount(w, sc.opts...)
				})
				ksrefCheck(t, sc, got, g)
				if strings.HasPrefix(sc.name, "session") {
					t.Run("SessionAggregate", func(t *testing.T) {
						got := ksrefRun(t, sc, serde.Int64, func(w kstream.WindowedStream[string, int64]) kstream.Table[kstream.Windowed[string], int64] {
							return kstream.SessionAggregate(w, func() int64 { return 0 },
								func(_ string, _ int64, n int64) int64 { return n + 1 },
								func(_ string, a, b int64) int64 { return a + b }, serde.Int64, sc.opts...)
						})
						ksrefCheck(t, sc, got, g)
					})
				}
			case sc.agg == ksrefList:
				got := ksrefRun(t, sc, serde.String, func(w kstream.WindowedStream[string, int64]) kstream.Table[kstream.Windowed[string], string] {
					return kstream.WindowedAggregate(w, func() string { return "" }, ksrefListAgg, serde.String, sc.opts...)
				})
				ksrefCheck(t, sc, got, g)
			}
		})
	}
}

// TestKSRefGoldenFilesCovered requires a scenario here for every golden
// file, so that one added to the harness is not silently unchecked.
func TestKSRefGoldenFilesCovered(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(ksrefDir, "*.golden"))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{"serde": true}
	for _, sc := range ksrefScenarios() {
		names[sc.name] = true
	}
	if len(files) != len(names) {
		t.Errorf("%d golden files, %d scenarios (serde included)", len(files), len(names))
	}
	for _, f := range files {
		if name := strings.TrimSuffix(filepath.Base(f), ".golden"); !names[name] {
			t.Errorf("golden file %s has no scenario in ksref_test.go", f)
		}
	}
}

// TestKSRefSerdes requires TimeWindowedSerde and SessionWindowedSerde to
// write exactly the bytes of Kafka Streams' TimeWindowedSerializer and
// SessionWindowedSerializer (StringSerializer inside), and to read them
// back as the same key and window (time windows: with size end - start, as
// the harness's TimeWindowedDeserializer).
func TestKSRefSerdes(t *testing.T) {
	f, err := os.ReadFile(filepath.Join(ksrefDir, "serde.golden"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for line := range strings.Lines(string(f)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fs := strings.Fields(line)
		if len(fs) != 5 {
			t.Fatalf("serde.golden: bad line %q", line)
		}
		start, err1 := strconv.ParseInt(fs[2], 10, 64)
		end, err2 := strconv.ParseInt(fs[3], 10, 64)
		want, err3 := hex.DecodeString(fs[4])
		if err1 != nil || err2 != nil || err3 != nil {
			t.Fatalf("serde.golden: bad line %q", line)
		}
		w := kstream.Windowed[string]{Key: fs[1], Start: start, End: end}
		var s serde.Serde[kstream.Windowed[string]]
		switch fs[0] {
		case "time":
			s = kstream.TimeWindowedSerde(serde.String, time.Duration(end-start)*time.Millisecond)
		case "session":
			s = kstream.SessionWindowedSerde(serde.String)
		default:
			t.Fatalf("serde.golden: bad kind in %q", line)
		}
		got, err := s.Serialize("out", w)
		if err != nil {
			t.Errorf("%s %v: Serialize: %v", fs[0], w, err)
		} else if !slices.Equal(got, want) {
			t.Errorf("%s %v: Serialize wrote %x, Kafka Streams %x", fs[0], w, got, want)
		}
		back, err := s.Deserialize("out", want)
		if err != nil {
			t.Errorf("%s %x: Deserialize: %v", fs[0], want, err)
		} else if back != w {
			t.Errorf("%s %x: Deserialize read %+v, Kafka Streams %+v", fs[0], want, back, w)
		}
		n++
	}
	if n == 0 {
		t.Fatal("serde.golden holds no windowed keys")
	}
}
