package integration

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/integration/kafkatest"
	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
)

// Names of the word-count topology's store and repartition.
const (
	wcStore       = "word-counts"
	wcRepartition = "words"
	// wcCommit is the commit interval of the word-count Apps: the record
	// cache reaches the output and the changelog at each commit.
	wcCommit = 100 * time.Millisecond
)

// wordCountTopology is the README's word count: lines -> FlatMapValues
// (words) -> GroupBy(word) -> Count -> ToStream -> out. The regrouping goes
// through "<app>-words-repartition", the counts live in "word-counts"
// (changelog "<app>-word-counts-changelog"). Sub-topology 0 reads in,
// sub-topology 1 the repartition topic and holds the store.
func wordCountTopology(t *testing.T, in, out string) *kstream.Topology {
	t.Helper()
	b := kstream.NewBuilder()
	lines := kstream.From(b, in, serde.String, serde.String)
	words := kstream.FlatMapValues(lines, strings.Fields)
	grouped := kstream.GroupBy(words, func(_, w string) string { return w }, serde.String, serde.String, kstream.Named(wcRepartition))
	kstream.Count(grouped, kstream.StoreName(wcStore)).ToStream().To(out, serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// wordCorpus makes n lines of 1 to 8 words from a vocabulary of vocab
// words ("w000"...), skewed so that counts differ widely, deterministically
// from seed. It adds each word's occurrences to want and returns the lines
// and the number of words.
func wordCorpus(seed uint64, n, vocab int, want map[string]int64) ([]string, int) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	lines := make([]string, n)
	total := 0
	for i := range lines {
		words := make([]string, 1+rng.IntN(8))
		for j := range words {
			w := fmt.Sprintf("w%03d", rng.IntN(rng.IntN(vocab)+1)) // skewed toward low numbers
			words[j] = w
			want[w]++
		}
		total += len(words)
		lines[i] = strings.Join(words, " ")
	}
	return lines, total
}

// lineRecords makes one record per line, keyed "line-<from+i>", in
// partition (from+i) mod partitions.
func lineRecords(topic string, lines []string, from int, partitions int32) []*kgo.Record {
	recs := make([]*kgo.Record, len(lines))
	for i, l := range lines {
		n := from + i
		recs[i] = &kgo.Record{
			Topic: topic, Partition: int32(n) % partitions,
			Key: fmt.Appendf(nil, "line-%d", n), Value: []byte(l),
			Timestamp: time.UnixMilli(1_700_000_000_000 + int64(n)),
		}
	}
	return recs
}

// lastCounts follows the records a reader read from a counts topic (string
// keys, int64 values) and keeps the last value of each key. Records of one
// key are in one partition, whose order the reader keeps.
type lastCounts struct {
	r     *reader
	topic string
	seen  int
	last  map[string]int64
}

func newLastCounts(r *reader, topic string) *lastCounts {
	return &lastCounts{r: r, topic: topic, last: make(map[string]int64)}
}

func (c *lastCounts) update(t testing.TB) {
	t.Helper()
	recs := c.r.records(c.topic)
	for _, rec := range recs[c.seen:] {
		if rec.Value == nil {
			t.Fatalf("%s: unexpected tombstone for key %q", c.topic, rec.Key)
		}
		v, err := serde.Int64.Deserialize(c.topic, rec.Value)
		if err != nil {
			t.Fatalf("%s: decode the value of key %q: %v", c.topic, rec.Key, err)
		}
		c.last[string(rec.Key)] = v
	}
	c.seen = len(recs)
}

// waitCounts reads until the last count of every key equals want exactly.
// Counts only grow, so a key counted past want, or one that want lacks,
// fails t at once (a record processed twice).
func (c *lastCounts) waitCounts(ctx context.Context, t testing.TB, want map[string]int64, apps ...*runningApp) {
	t.Helper()
	c.r.detail = func() string {
		var diff []string
		for _, k := range sortedKeys(want) {
			if c.last[k] != want[k] {
				diff = append(diff, fmt.Sprintf("%s=%d(want %d)", k, c.last[k], want[k]))
			}
		}
		if len(diff) > 10 {
			diff = append(diff[:10], fmt.Sprintf("... %d more", len(diff)-10))
		}
		return fmt.Sprintf("%d of %d counts differ: %s", len(diff), len(want), strings.Join(diff, " "))
	}
	defer func() { c.r.detail = nil }()
	c.r.readUntil(ctx, fmt.Sprintf("the counts of %d words", len(want)), func() bool {
		c.update(t)
		for k, v := range c.last {
			if w, ok := want[k]; !ok || v > w {
				t.Fatalf("%s: key %q counted %d, want %d (present: %v)", c.topic, k, v, w, ok)
			}
		}
		return maps.Equal(c.last, want)
	}, apps...)
}

// queryAll returns every entry of store that a's local tasks hold.
func queryAll(t testing.TB, a *runningApp, store string) map[string]int64 {
	t.Helper()
	kv, err := kstream.QueryStore(a.App, store, serde.String, serde.Int64)
	if err != nil {
		t.Fatal(err)
	}
	seq, errf := kv.AllErr()
	got := make(map[string]int64)
	for k, v := range seq {
		if _, dup := got[k]; dup {
			t.Fatalf("%s: QueryStore(%s).All gave key %q twice", a.name, store, k)
		}
		got[k] = v
	}
	if err := errf(); err != nil {
		t.Fatalf("%s: QueryStore(%s).All: %v", a.name, store, err)
	}
	return got
}

// requireStoreEquals fails t unless the store of a, read with All and
// with Get for every key of want, holds exactly want.
func requireStoreEquals(t testing.TB, a *runningApp, store string, want map[string]int64) {
	t.Helper()
	if got := queryAll(t, a, store); !maps.Equal(got, want) {
		t.Fatalf("%s: QueryStore(%s).All:\n got %d keys %v\nwant %d keys %v", a.name, store, len(got), got, len(want), want)
	}
	kv, err := kstream.QueryStore(a.App, store, serde.String, serde.Int64)
	if err != nil {
		t.Fatal(err)
	}
	for k, n := range want {
		if v, ok, err := kv.Get(k); err != nil || !ok || v != n {
			t.Fatalf("%s: QueryStore(%s).Get(%q) = %d, %v, %v; want %d", a.name, store, k, v, ok, err, n)
		}
	}
}

// waitAssigned waits until apps hold tasks tasks between them, spread
// evenly (each tasks/len(apps), rounded up or down), none restoring.
func waitAssigned(ctx context.Context, t testing.TB, tasks int, apps ...*runningApp) {
	t.Helper()
	lo, hi := tasks/len(apps), (tasks+len(apps)-1)/len(apps)
	waitFor(ctx, t, fmt.Sprintf("%d tasks assigned over %d instances, restored", tasks, len(apps)), func() bool {
		sum := 0
		for _, a := range apps {
			m := a.Metrics()
			if len(m.Tasks) < lo || len(m.Tasks) > hi || len(m.RestoringTasks) > 0 {
				return false
			}
			sum += len(m.Tasks)
		}
		return sum == tasks
	}, apps...)
}

// offsetRange returns the start and end (last stable) offsets of each
// partition of topic.
func offsetRange(ctx context.Context, t testing.TB, adm *kadm.Client, topic string) (start, end map[int32]int64) {
	t.Helper()
	var starts kadm.ListedOffsets
	err := retry(ctx, func() error {
		var err error
		starts, err = adm.ListStartOffsets(ctx, topic)
		if err == nil {
			err = starts.Error()
		}
		return err
	})
	if err != nil {
		t.Fatalf("list the start offsets of %s: %v", topic, err)
	}
	start = make(map[int32]int64)
	starts.Each(func(o kadm.ListedOffset) { start[o.Partition] = o.Offset })
	return start, lastStableOffsets(ctx, t, adm, topic)[topic]
}

// changelogSize returns how many records topic holds (end minus start
// offset, summed over its partitions) and checks, by reading the topic
// whole, that this is its number of data records: nothing compacted away,
// no control records.
func changelogSize(ctx context.Context, t testing.TB, b *kafkatest.Broker, adm *kadm.Client, topic string) int64 {
	t.Helper()
	start, end := offsetRange(ctx, t, adm, topic)
	var n int64
	for p, e := range end {
		n += e - start[p]
	}
	r := newReader(t, b, topic)
	r.readToEnd(ctx)
	if got := int64(r.count(topic)); got != n {
		t.Fatalf("changelog %s: read %d records, its offsets say %d (start %v, end %v)", topic, got, n, start, end)
	}
	return n
}

// topicConfig returns the value of config key of topic ("" when unset).
func topicConfig(ctx context.Context, t testing.TB, adm *kadm.Client, topic, key string) string {
	t.Helper()
	cfgs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatalf("describe the configs of %s: %v", topic, err)
	}
	rc, err := cfgs.On(topic, nil)
	if err != nil {
		t.Fatalf("describe the configs of %s: %v", topic, err)
	}
	for _, c := range rc.Configs {
		if c.Key == key && c.Value != nil {
			return *c.Value
		}
	}
	return ""
}

// partitionCount returns the number of partitions of topic, 0 when it does
// not exist.
func partitionCount(ctx context.Context, t testing.TB, adm *kadm.Client, topic string) int {
	t.Helper()
	details, err := adm.ListTopics(ctx, topic)
	if err != nil {
		t.Fatalf("list topic %s: %v", topic, err)
	}
	d, ok := details[topic]
	if !ok || d.Err != nil {
		return 0
	}
	return len(d.Partitions)
}

// deleteTopicsAtEnd deletes topics (the internal topics an App creates),
// best effort, when t ends, after the Apps stopped.
func deleteTopicsAtEnd(t testing.TB, b *kafkatest.Broker, topics ...string) {
	t.Helper()
	adm := b.Admin(t) // its client is closed after the cleanup below ran
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		_, _ = adm.DeleteTopics(ctx, topics...)
	})
}

// sortedKeys returns m's keys in order, for stable messages.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// wordCountRig is a word count on topics, an application id and a state
// directory of its own, as the restore tests run it: one instance at a time,
// with the instance id "wc".
type wordCountRig struct {
	in, out, appID, changelog, dir string
	topo                           *kstream.Topology
	adm                            *kadm.Client
	prod                           *kgo.Client
	counts                         *lastCounts
	opts                           []kstream.Opt
}

// newWordCountRig makes the rig's topics (deleted when t ends, with the
// internal ones) and its clients; the application id starts with prefix.
func newWordCountRig(t *testing.T, b *kafkatest.Broker, prefix string) *wordCountRig {
	t.Helper()
	r := &wordCountRig{in: newTopic(t, b, "wc-lines", 4), out: newTopic(t, b, "wc-counts", 4)}
	r.appID = kafkatest.UniqueName(t, prefix)
	r.changelog = r.appID + "-" + wcStore + "-changelog"
	deleteTopicsAtEnd(t, b, r.appID+"-"+wcRepartition+"-repartition", r.changelog)
	r.topo = wordCountTopology(t, r.in, r.out)
	r.adm = kadm.NewClient(b.Client(t, kgo.MetadataMinAge(checkEvery)))
	r.prod = producer(t, b)
	r.counts = newLastCounts(newReader(t, b, r.out), r.out)
	r.dir = t.TempDir()
	r.opts = []kstream.Opt{kstream.ApplicationID(r.appID), kstream.InstanceID("wc"), kstream.StateDir(r.dir), kstream.CommitInterval(wcCommit)}
	return r
}
