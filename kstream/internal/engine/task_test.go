package engine

import (
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

type sliceCollector struct{ recs []*kgo.Record }

func (c *sliceCollector) Send(_ *Task, r *kgo.Record) { c.recs = append(c.recs, r) }

func testEnv(c Collector) *TaskEnv {
	return &TaskEnv{AppID: "t", Logger: slog.New(slog.DiscardHandler), Collector: c, Counters: new(Counters),
		Now: time.Now, OnDeser: LogAndFail, OnProcess: LogAndFail, OnProduce: LogAndFail}
}

func TestRecordQueueCompacts(t *testing.T) {
	q := &RecordQueue{}
	for i := 0; i < 5000; i++ {
		q.push(&kgo.Record{Offset: int64(i)}, int64(i))
		if i%3 == 0 {
			r, ts := q.pop()
			if r.Offset != ts {
				t.Fatalf("pop mismatch %d %d", r.Offset, ts)
			}
		}
	}
	want := int64(1667)
	for q.Len() > 0 {
		r, _ := q.pop()
		if r.Offset != want {
			t.Fatalf("got offset %d, want %d", r.Offset, want)
		}
		want++
	}
	if want != 5000 {
		t.Fatalf("drained up to %d, want 5000", want)
	}
}
