package integration

// Streamwork's windowed aggregations against Kafka Streams' own output:
// ksref/testdata/*.golden hold what Kafka Streams' TopologyTestDriver
// produced for each scenario below (ksref/run regenerates them with
// Maven), and these tests run the same scenarios through kstreamtest and
// require the same records, in the same order: key, window, value,
// timestamp, tombstones. They need no broker and no Java: they read the
// golden files only.

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

// ksrefInput is one input record of a scenario: piped to "in" in order.
type ksrefInput struct {
	Key   string
	Value int64
	TS    int64
}

func (r ksrefInput) String() string { return fmt.Sprintf("%s %d %d", r.Key, r.Value, r.TS) }

// ksrefOnes makes inputs of value 1 (for counts) from key, timestamp pairs.
func ksrefOnes(keyTS ...any) []ksrefInput {
	var res []ksrefInput
	for i := 0; i < len(keyTS); i += 2 {
		res = append(res, ksrefInput{Key: keyTS[i].(string), Value: 1, TS: int64(keyTS[i+1].(int))})
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
// (ksref/src/main/java/streamwork/ksref/Golden.java) builds it.
type ksrefScenario struct {
	name    string
	windows kstream.Windows
	agg     ksrefAgg
	opts    []kstream.NodeOpt
	inputs  []ksrefInput
}

const ksrefMS = time.Millisecond

func ksrefScenarios() []ksrefScenario {
	slidingEarly := []ksrefInput{{"a", 1, 1000}, {"a", 2, 3000}, {"a", 3, 2000}, {"a", 4, 7000}, {"a", 5, 6500}}
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
			inputs: ksrefOnes("a", 1000, "b", 2000, "a", 4000, "a", 6999, "a", 3000, "b", 7000, "a", 100, "a", 7001)},
	}
}

// ksrefGolden is a parsed golden file: the inputs it was made from (its
// "# input" lines) and its output lines, "key start end value timestamp".
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
// build, and returns the results as golden lines.
func ksrefRun[A any](t *testing.T, sc ksrefScenario, as serde.Serde[A],
	build func(kstream.WindowedStream[string, int64]) kstream.Table[kstream.Windowed[string], A]) []string {
	t.Helper()
	b := kstream.NewBuilder()
	in := kstream.From(b, "in", serde.String, serde.Int64)
	table := build(kstream.WindowedBy(kstream.GroupByKey(in, serde.String, serde.Int64), sc.windows))
	kstream.SelectKey(table.ToStream(), func(k kstream.Windowed[string], _ A) string {
		return fmt.Sprintf("%s %d %d", k.Key, k.Start, k.End)
	}).To("out", serde.String, as)
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
	pin := kstreamtest.Input(d, "in", serde.String, serde.Int64)
	for _, r := range sc.inputs {
		if err := pin.Pipe(r.Key, r.Value, time.UnixMilli(r.TS)); err != nil {
			t.Fatalf("pipe %v: %v", r, err)
		}
	}
	recs, err := kstreamtest.Output(d, "out", serde.String, as).Records()
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
	var sb strings.Builder
	fmt.Fprintf(&sb, "Streamwork's output differs from Kafka Streams' (key start end value timestamp):\n")
	for i := range max(len(got), len(want)) {
		g, w := "-", "-"
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		mark := "  "
		if g != w {
			mark = "!="
		}
		fmt.Fprintf(&sb, "  %2d  streamwork %-28s %s  kafka streams %s\n", i, g, mark, w)
	}
	t.Error(sb.String())
}

// TestKSRefWindows runs each scenario and requires Kafka Streams' output.
// Session scenarios run twice: with WindowedCount and with a count made
// with SessionAggregate.
func TestKSRefWindows(t *testing.T) {
	for _, sc := range ksrefScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			g := readKSRefGolden(t, sc.name)
			in := make([]string, len(sc.inputs))
			for i, r := range sc.inputs {
				in[i] = r.String()
			}
			if !slices.Equal(in, g.inputs) {
				t.Fatalf("the golden file was made from other inputs:\n got %q\nwant %q", g.inputs, in)
			}
			switch sc.agg {
			case ksrefCount:
				got := ksrefRun(t, sc, serde.Int64, func(w kstream.WindowedStream[string, int64]) kstream.Table[kstream.Windowed[string], int64] {
					return kstream.WindowedCount(w, sc.opts...)
				})
				ksrefCompare(t, got, g.outputs)
				if strings.HasPrefix(sc.name, "session") {
					t.Run("SessionAggregate", func(t *testing.T) {
						got := ksrefRun(t, sc, serde.Int64, func(w kstream.WindowedStream[string, int64]) kstream.Table[kstream.Windowed[string], int64] {
							return kstream.SessionAggregate(w, func() int64 { return 0 },
								func(_ string, _ int64, n int64) int64 { return n + 1 },
								func(_ string, a, b int64) int64 { return a + b }, serde.Int64, sc.opts...)
						})
						ksrefCompare(t, got, g.outputs)
					})
				}
			case ksrefList:
				got := ksrefRun(t, sc, serde.String, func(w kstream.WindowedStream[string, int64]) kstream.Table[kstream.Windowed[string], string] {
					return kstream.WindowedAggregate(w, func() string { return "" }, ksrefListAgg, serde.String, sc.opts...)
				})
				ksrefCompare(t, got, g.outputs)
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
