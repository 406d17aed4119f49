package main

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
	"github.com/streamwork-go/streamwork/state"
)

// Passage is an event after the normalise stage: the plate in canonical
// form and the toll the vehicle pays.
type Passage struct {
	Booth     string    `json:"booth"`
	Seq       int64     `json:"seq"`
	Type      string    `json:"type"`
	Plate     string    `json:"plate"`
	RawPlate  string    `json:"raw_plate"`
	TollCents int64     `json:"toll_cents"`
	TS        time.Time `json:"ts"`
}

// BoothCount is a booth's counter: vehicles by type, the last sequence
// number seen and how many events came with another number than the one
// after it.
type BoothCount struct {
	Vehicles   int64            `json:"vehicles"`
	ByType     map[string]int64 `json:"by_type"`
	LastSeq    int64            `json:"last_seq"`
	OutOfOrder int64            `json:"out_of_order"`
}

// TypeCount is a vehicle type's counter: vehicles, tolls, and how many
// plates the normalise stage rewrote.
type TypeCount struct {
	Vehicles        int64 `json:"vehicles"`
	TollCents       int64 `json:"toll_cents"`
	RewrittenPlates int64 `json:"rewritten_plates"`
}

// The stages, as Trace names them.
const (
	StageRead         = "read"
	StageNormalise    = "normalise"
	StageCountByType  = "count-by-type"
	StageCountByBooth = "count-by-booth"
)

// Partition counts of the stages' topics: the input's (the read stage's
// tasks) and the internal topics'.
const (
	InputPartitions     = 4
	ShufflePartitions   = 3
	ByTypePartitions    = 2
	ByBoothPartitions   = 2
	boothCountStoreName = "booth-counts"
	typeCountStoreName  = "type-counts"
)

// Topics names the example's topics.
type Topics struct {
	Input, BoothCounts, TypeCounts string
}

// Topology is the job, four stages over three internal topics:
//
//	input (keyed by booth) ─► read ─┬─ shuffle grouping (round robin) ─► normalise ─► by type ─► count-by-type ─► TypeCounts
//	                                └─ fields grouping (by booth) ─► count-by-booth ─► BoothCounts
//
// Each stage's processor notes in tr which task handled each record.
func Topology(t Topics, tr *Trace) (*kstream.Topology, error) {
	b := kstream.NewBuilder()
	events := kstream.From(b, t.Input, serde.String, serde.JSON[Event](), kstream.Named("events"),
		kstream.WithTimestamps(func(r kstream.Record[string, Event]) (time.Time, error) { return r.Value.TS, nil }))
	read := kstream.Process(events, func() kstream.Processor[string, Event, string, Event] {
		return &readStage{tr: tr}
	}, kstream.Named(StageRead))

	// Shuffle grouping: the stateless stage takes records in turn, whatever
	// their booth, so the busy booths' load is spread evenly.
	shuffled := kstream.Repartition(read, serde.String, serde.JSON[Event](),
		kstream.Named("shuffle"), kstream.RoundRobin(), kstream.Partitions(ShufflePartitions))
	passages := kstream.Process(shuffled, func() kstream.Processor[string, Event, string, Passage] {
		return &normaliseStage{tr: tr}
	}, kstream.Named(StageNormalise))

	// Fields grouping by vehicle type: each type is counted by one task.
	byType := kstream.Repartition(passages, serde.String, serde.JSON[Passage](),
		kstream.Named("by-type"), kstream.Partitions(ByTypePartitions))
	kstream.AddStore(b, typeCountStoreName)
	kstream.Process(byType, func() kstream.Processor[string, Passage, string, TypeCount] {
		return &typeCounter{tr: tr}
	}, kstream.Named(StageCountByType), kstream.UseStores(typeCountStoreName)).
		To(t.TypeCounts, serde.String, serde.JSON[TypeCount](), kstream.Named("type-counts"))

	// Fields grouping by booth: each booth is counted by one task, which
	// gets its events in the order the booth wrote them.
	byBooth := kstream.Repartition(read, serde.String, serde.JSON[Event](),
		kstream.Named("by-booth"), kstream.Partitions(ByBoothPartitions))
	kstream.AddStore(b, boothCountStoreName)
	kstream.Process(byBooth, func() kstream.Processor[string, Event, string, BoothCount] {
		return &boothCounter{tr: tr}
	}, kstream.Named(StageCountByBooth), kstream.UseStores(boothCountStoreName)).
		To(t.BoothCounts, serde.String, serde.JSON[BoothCount](), kstream.Named("booth-counts"))
	return b.Build()
}

// readStage passes the input on, noting its tasks.
type readStage struct {
	ctx kstream.ProcessorContext[string, Event]
	tr  *Trace
}

func (p *readStage) Init(ctx kstream.ProcessorContext[string, Event]) error { p.ctx = ctx; return nil }
func (p *readStage) Close() error                                           { return nil }
func (p *readStage) Process(r kstream.Record[string, Event]) error {
	p.tr.add(StageRead, p.ctx.TaskID(), r.Key)
	p.ctx.Forward(r)
	return nil
}

// normaliseStage rewrites the plate in canonical form, adds the toll, and
// keys the passage by vehicle type.
type normaliseStage struct {
	ctx kstream.ProcessorContext[string, Passage]
	tr  *Trace
}

func (p *normaliseStage) Init(ctx kstream.ProcessorContext[string, Passage]) error {
	p.ctx = ctx
	return nil
}
func (p *normaliseStage) Close() error { return nil }
func (p *normaliseStage) Process(r kstream.Record[string, Event]) error {
	p.tr.add(StageNormalise, p.ctx.TaskID(), r.Key)
	e := r.Value
	p.ctx.Forward(kstream.WithKeyValue(r, e.Type, Passage{
		Booth: e.Booth, Seq: e.Seq, Type: e.Type, Plate: NormalisePlate(e.Plate), RawPlate: e.Plate,
		TollCents: TollCents[e.Type], TS: e.TS,
	}))
	return nil
}

// typeCounter counts vehicles and tolls per type in its store and forwards
// each type's new count.
type typeCounter struct {
	ctx    kstream.ProcessorContext[string, TypeCount]
	counts *state.KeyValue[string, TypeCount]
	tr     *Trace
}

func (p *typeCounter) Init(ctx kstream.ProcessorContext[string, TypeCount]) error {
	p.ctx = ctx
	var err error
	p.counts, err = kstream.StoreOf(ctx, typeCountStoreName, serde.String, serde.JSON[TypeCount]())
	return err
}
func (p *typeCounter) Close() error { return nil }
func (p *typeCounter) Process(r kstream.Record[string, Passage]) error {
	p.tr.add(StageCountByType, p.ctx.TaskID(), r.Key)
	c, _, err := p.counts.Get(r.Key)
	if err != nil {
		return err
	}
	c.Vehicles++
	c.TollCents += r.Value.TollCents
	if r.Value.Plate != r.Value.RawPlate {
		c.RewrittenPlates++
	}
	if err := p.counts.Put(r.Key, c); err != nil {
		return err
	}
	p.ctx.Forward(kstream.WithValue(r, c))
	return nil
}

// boothCounter counts vehicles per booth and type in its store, checks
// that each booth's events come in sequence, and forwards each booth's new
// count.
type boothCounter struct {
	ctx    kstream.ProcessorContext[string, BoothCount]
	counts *state.KeyValue[string, BoothCount]
	tr     *Trace
}

func (p *boothCounter) Init(ctx kstream.ProcessorContext[string, BoothCount]) error {
	p.ctx = ctx
	var err error
	p.counts, err = kstream.StoreOf(ctx, boothCountStoreName, serde.String, serde.JSON[BoothCount]())
	return err
}
func (p *boothCounter) Close() error { return nil }
func (p *boothCounter) Process(r kstream.Record[string, Event]) error {
	p.tr.add(StageCountByBooth, p.ctx.TaskID(), r.Key)
	c, _, err := p.counts.Get(r.Key)
	if err != nil {
		return err
	}
	if r.Value.Seq != c.LastSeq+1 {
		c.OutOfOrder++
	}
	c.LastSeq = r.Value.Seq
	c.Vehicles++
	if c.ByType == nil {
		c.ByType = map[string]int64{}
	}
	c.ByType[r.Value.Type]++
	if err := p.counts.Put(r.Key, c); err != nil {
		return err
	}
	p.ctx.Forward(kstream.WithValue(r, c))
	return nil
}

// Trace notes which task of each stage handled which records. The stages'
// processors call it from the App's workers, so it locks.
type Trace struct {
	mu     sync.Mutex
	stages map[string]map[kstream.TaskID]map[string]int
}

// NewTrace returns an empty Trace.
func NewTrace() *Trace {
	return &Trace{stages: map[string]map[kstream.TaskID]map[string]int{}}
}

func (t *Trace) add(stage string, id kstream.TaskID, key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stages[stage] == nil {
		t.stages[stage] = map[kstream.TaskID]map[string]int{}
	}
	if t.stages[stage][id] == nil {
		t.stages[stage][id] = map[string]int{}
	}
	t.stages[stage][id][key]++
}

// TaskLoad is what one task of a stage handled.
type TaskLoad struct {
	Task    kstream.TaskID
	Records int
	Keys    []string // sorted
}

// Tasks returns what each task of stage handled, by task id.
func (t *Trace) Tasks(stage string) []TaskLoad {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []TaskLoad
	for id, keys := range t.stages[stage] {
		l := TaskLoad{Task: id}
		for k, n := range keys {
			l.Records += n
			l.Keys = append(l.Keys, k)
		}
		slices.Sort(l.Keys)
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b TaskLoad) int {
		return cmp.Or(cmp.Compare(a.Task.Subtopology, b.Task.Subtopology), cmp.Compare(a.Task.Partition, b.Task.Partition))
	})
	return out
}
