package kstream

import (
	"fmt"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
)

// ShedPolicy is a source's load-shedding policy (ShedLoad): what to drop
// when the App cannot keep up, instead of only slowing the source down.
//
// The decision is taken for each record at the moment its task takes it
// from its partition's queue for processing, and only then: a record is
// dropped when its partition's lag exceeds MaxLag or the partition's queue
// holds more than MaxBuffered records. Zero means no bound. The lag is the
// partition's known end (its last stable offset as of the latest fetch)
// minus the record's offset: the record itself and those after it; while
// the end is unknown the lag bound does not apply. The queue counts the
// record itself and the partition's records fetched after it. Queues hold
// at most BufferedRecordsPerPartition records (fetching pauses when one is
// full), so a useful MaxBuffered is below that.
//
// A dropped record is not processed (it does not advance stream time, and
// is not in Metrics.RecordsProcessed) but its offset is committed as if it
// had been: it is not read again. Each is counted in Metrics.Shed and per
// input partition, and the App logs a summary line per source at most every
// few seconds, never a line per record. When To is set, each dropped record
// is written to that topic (which must exist) with its original key, value,
// timestamp and headers plus HeaderShedReason ("lag" or "buffered"),
// HeaderShedTopic, HeaderShedPartition and HeaderShedOffset, through the
// same producer as the outputs, so under exactly-once it is in the same
// transaction; a failed write is a production error. Since the oldest
// queued records go first, shedding keeps the freshest.
type ShedPolicy struct {
	// MaxLag is the most records a partition may lag behind its end when
	// one of its records is processed; 0: no bound.
	MaxLag int64
	// MaxBuffered is the most records a partition's queue may hold when one
	// of them is processed; 0: no bound.
	MaxBuffered int
	// To names the topic dropped records are written to; "": none.
	To string
}

// Header names of records written to a ShedPolicy's To topic, beside the
// record's own headers.
const (
	// HeaderShedReason is why the record was dropped: "lag" or "buffered".
	HeaderShedReason = engine.HeaderShedReason
	// HeaderShedTopic, HeaderShedPartition and HeaderShedOffset are where
	// the record was read (decimal partition and offset).
	HeaderShedTopic     = engine.HeaderShedTopic
	HeaderShedPartition = engine.HeaderShedPartition
	HeaderShedOffset    = engine.HeaderShedOffset
)

// ShedLoad sets a source's load-shedding policy (From, FromTopics only;
// other operators make Build fail with ErrOptionNotApplicable). Without it
// a source that falls behind is only slowed down: fetching its partitions
// pauses while their queues are full (BufferedRecordsPerPartition). A
// negative bound or an illegal topic name makes Build fail.
func ShedLoad(p ShedPolicy) NodeOpt {
	return nodeOptFunc(func(c *nodeCfg) { c.shed = &p })
}

// validate checks a policy: the one place its rules live.
func (p ShedPolicy) validate() error {
	switch {
	case p.MaxLag < 0:
		return fmt.Errorf("%w: ShedLoad: MaxLag %d is negative", ErrTopology, p.MaxLag)
	case p.MaxBuffered < 0:
		return fmt.Errorf("%w: ShedLoad: MaxBuffered %d is negative", ErrTopology, p.MaxBuffered)
	case p.To != "" && !engine.LegalName.MatchString(p.To):
		return fmt.Errorf("%w: ShedLoad: %q is not a legal topic name", ErrTopology, p.To)
	}
	return nil
}

// shedPolicy returns the engine's form of the policy in c for the source
// being added, recording an invalid one in b; nil when there is none.
func (b *Builder) shedPolicy(c *nodeCfg) *engine.ShedPolicy {
	if c.shed == nil {
		return nil
	}
	b.unclaimedShed--
	if err := c.shed.validate(); err != nil {
		b.errs = append(b.errs, err)
		return nil
	}
	return &engine.ShedPolicy{MaxLag: c.shed.MaxLag, MaxBuffered: c.shed.MaxBuffered, To: c.shed.To}
}
