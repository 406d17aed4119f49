package kstream

import (
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
)

// sliceCollector keeps what a task writes.
type sliceCollector struct{ recs []*kgo.Record }

func (c *sliceCollector) Send(_ *task, r *kgo.Record) { c.recs = append(c.recs, r) }

// nopCollector drops what a task writes.
type nopCollector struct{}

func (nopCollector) Send(*task, *kgo.Record) {}

// testEnv is a task environment for tasks made straight from a topology,
// with no runtime around them.
func testEnv(c engine.Collector) *engine.TaskEnv {
	return &engine.TaskEnv{AppID: "t", Logger: slog.New(slog.DiscardHandler), Collector: c, Counters: new(engine.Counters),
		Now: time.Now, OnDeser: LogAndFail, OnProcess: LogAndFail, OnProduce: LogAndFail}
}
