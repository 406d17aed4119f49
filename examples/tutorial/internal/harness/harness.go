package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/examples/service"
	"github.com/streamwork-go/streamwork/kstream"
)

// Input is a record written before the App starts.
type Input struct {
	Topic, Key, Value string
	// Time is the record's timestamp: its event time.
	Time time.Time
}

// Job is one run of a step.
type Job struct {
	// AppID is the application id; it names the group and the internal
	// topics.
	AppID string
	// Topics are created with one partition each before the input is
	// written: the input, output and side-output topics.
	Topics []string
	// Inputs are written in order, before the App starts.
	Inputs []Input
	// Outputs are the topics read back once the App has processed its input.
	Outputs []string
	// Query, when set, is called once the App has processed its input, while
	// it still runs: the place for interactive queries.
	Query func(app *kstream.App) error
}

// Run runs app (made from topo) on the brokers at addrs until it has committed every
// record of its input and internal topics, calls job.Query, stops the App,
// and returns the records of job.Outputs read back read-committed, in
// offset order per topic.
func Run(ctx context.Context, addrs []string, app *kstream.App, topo *kstream.Topology, job Job) (map[string][]*kgo.Record, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for _, tp := range job.Topics {
		if _, err := adm.CreateTopic(ctx, 1, 1, nil, tp); err != nil {
			return nil, fmt.Errorf("create topic %s: %w", tp, err)
		}
	}
	recs := make([]*kgo.Record, len(job.Inputs))
	for i, in := range job.Inputs {
		recs[i] = &kgo.Record{Topic: in.Topic, Key: []byte(in.Key), Value: []byte(in.Value), Timestamp: in.Time}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return nil, fmt.Errorf("write the input: %w", err)
	}

	appCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- app.Run(appCtx) }()

	// The input first: the App has made its internal topics by the time it
	// committed any of it.
	err = waitProcessed(ctx, adm, addrs, job.AppID, topo.SourceTopics(), done)
	if err == nil {
		err = waitProcessed(ctx, adm, addrs, job.AppID, consumed(topo, job.AppID), done)
	}
	if err == nil && job.Query != nil {
		err = job.Query(app)
	}
	stop()
	if runErr := <-done; runErr != nil && err == nil {
		err = runErr
	}
	if err != nil {
		return nil, err
	}
	return service.ReadAll(ctx, addrs, job.Outputs...)
}

// consumed lists the topics the App reads: its source topics, the
// internal ones under their full names.
func consumed(topo *kstream.Topology, appID string) []string {
	topics := topo.SourceTopics()
	for _, st := range topo.Describe().Subtopologies {
		for _, n := range st.Nodes {
			if n.Kind == "Source" {
				for _, tp := range n.Topics {
					if strings.HasSuffix(tp, "-repartition") {
						topics = append(topics, appID+"-"+tp)
					}
				}
			}
		}
	}
	return topics
}

// waitProcessed waits, for a minute at most, until group has committed
// every record of topics, and their ends no longer move. If the App stops
// first, its error is put back on appDone.
func waitProcessed(ctx context.Context, adm *kadm.Client, addrs []string, group string, topics []string, appDone chan error) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var prev map[string]map[int32]int64
	for {
		want, err := lastRecords(ctx, adm, addrs, topics)
		if err != nil {
			return err
		}
		committed := func() bool {
			offs, err := adm.FetchOffsets(ctx, group)
			if err != nil {
				return false
			}
			for tp, ps := range want {
				for p, end := range ps {
					if o, ok := offs.Lookup(tp, p); !ok || o.Err != nil || o.At < end {
						return false
					}
				}
			}
			return true
		}
		tick := time.NewTicker(50 * time.Millisecond)
		for !committed() {
			select {
			case err := <-appDone:
				appDone <- err // for Run, which waits for it
				tick.Stop()
				return fmt.Errorf("%s stopped before it processed its input: %v", group, err)
			case <-ctx.Done():
				tick.Stop()
				return fmt.Errorf("waiting for %s to commit %v: %w", group, want, ctx.Err())
			case <-tick.C:
			}
		}
		tick.Stop()
		if prev != nil && same(prev, want) {
			return nil
		}
		prev = want
	}
}

// lastRecords returns, per partition of topics, the offset after its last
// data record: where a group that processed it all has committed. That is
// the end offset, or one less when the last offset is a transaction
// marker (under exactly-once), which no committed offset passes. Records
// before the log start (repartition topics are purged once committed) are
// not read.
func lastRecords(ctx context.Context, adm *kadm.Client, addrs []string, topics []string) (map[string]map[int32]int64, error) {
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list end offsets of %v: %w", topics, err)
	}
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list start offsets of %v: %w", topics, err)
	}
	want := map[string]map[int32]int64{}
	read := map[string]map[int32]kgo.Offset{}
	left := 0
	ends.Each(func(e kadm.ListedOffset) {
		if want[e.Topic] == nil {
			want[e.Topic] = map[int32]int64{}
		}
		want[e.Topic][e.Partition] = e.Offset
		if s, ok := starts.Lookup(e.Topic, e.Partition); ok && s.Offset < e.Offset {
			if read[e.Topic] == nil {
				read[e.Topic] = map[int32]kgo.Offset{}
			}
			read[e.Topic][e.Partition] = kgo.NewOffset().At(e.Offset - 1)
			left++
		}
	})
	if left == 0 {
		return want, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumePartitions(read),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	for left > 0 {
		pollCtx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		fs := cl.PollFetches(pollCtx)
		cancel()
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("reading the last records of %v: %w", topics, err)
		}
		var ferr error
		fs.EachError(func(tp string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				ferr = fmt.Errorf("reading %s[%d]: %w", tp, p, err)
			}
		})
		if ferr != nil {
			return nil, ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			if _, ok := read[r.Topic][r.Partition]; !ok || r.Offset != want[r.Topic][r.Partition]-1 {
				return
			}
			if r.Attrs.IsControl() {
				want[r.Topic][r.Partition]--
			}
			delete(read[r.Topic], r.Partition)
			left--
		})
		// A repartition topic may be purged past the record meanwhile:
		// then the group committed the whole partition.
		starts, err := adm.ListStartOffsets(ctx, topics...)
		if err != nil {
			return nil, fmt.Errorf("list start offsets of %v: %w", topics, err)
		}
		for tp, ps := range read {
			for p := range ps {
				if s, ok := starts.Lookup(tp, p); ok && s.Err == nil && s.Offset >= want[tp][p] {
					delete(ps, p)
					left--
				}
			}
		}
	}
	return want, nil
}

func same(a, b map[string]map[int32]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for tp, ps := range a {
		if len(ps) != len(b[tp]) {
			return false
		}
		for p, o := range ps {
			if b[tp][p] != o {
				return false
			}
		}
	}
	return true
}

// CheckGolden compares got with the file at path. With
// STREAMWORK_UPDATE_GOLDEN=1 it writes got to path instead.
func CheckGolden(t testing.TB, path, got string) {
	t.Helper()
	if os.Getenv("STREAMWORK_UPDATE_GOLDEN") == "1" {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Fatalf("%s differs:\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// At returns 2026-03-02 at the UTC time of day hhmmss ("09:00:05"): the
// tutorial's event times.
func At(hhmmss string) time.Time {
	t, err := time.Parse(time.DateTime, "2026-03-02 "+hhmmss)
	if err != nil {
		panic(err)
	}
	return t
}
