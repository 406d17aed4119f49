package engine

import (
	"math/bits"
	"time"
)

// Per-task statistics: what the runtime's workers (and the test driver)
// read to fill a Metrics snapshot. They are plain fields, written and read
// on the goroutine that owns the task, so the hot path adds increments and
// no synchronization.
//
// Records are counted at every node (Downstream counts a record into each
// child and out of its parent; sources count in at the task, sinks count
// out when they hand a record to the collector). Time is sampled: one
// record in SampleEvery per task (the first one, then every SampleEvery-th)
// is timed node by node (two clock reads per node it reaches), and
// NodeTime scales the sampled time by the task's records over its timed
// ones, so a node's processing time is an estimate whose cost is a
// fraction of a clock read per record.

// SampleEvery is how many records of a task pass for each one timed node
// by node.
const SampleEvery = 16

// NodeStats are the counters of one node in one task.
type NodeStats struct {
	// In counts records the node received, Out the records it forwarded
	// (each forward once, whatever the number of children) or, for a
	// sink, handed to the collector.
	In, Out int64
	// Time is the node's own processing time (its children excluded) on
	// the timed records (see NodeTime).
	Time time.Duration
}

// NodeTime returns the estimated own processing time of the i-th node of
// t's sub-topology: its time on the timed records, scaled to all records.
func (t *Task) NodeTime(i int) time.Duration {
	if t.Stats.Sampled == 0 || t.Nodes[i].Time <= 0 {
		return 0
	}
	return time.Duration(float64(t.Nodes[i].Time) * float64(t.Stats.Processed) / float64(t.Stats.Sampled))
}

// NodeStat returns the statistics of node n in t (a throwaway one for a
// node that is not in t's sub-topology).
func (t *Task) NodeStat(n *Node) *NodeStats {
	if i, ok := t.nodeIdx[n]; ok {
		return &t.Nodes[i]
	}
	return new(NodeStats)
}

// latency histogram: bucket i < 4 holds latencies of exactly i ms; above,
// four buckets per power of two (a bucket spans at most 25% of its lower
// bound), up to 2^40 ms.
const (
	latBuckets  = 160
	latMaxShift = 40
)

// LatencyHist is a fixed-bucket histogram of end-to-end latencies (wall
// clock at processing minus the record's timestamp, in ms) over about
// RateWindow: two halves, the current one and the one before, rotated
// every RateWindow/2. Observing allocates nothing.
type LatencyHist struct {
	cur, prev [latBuckets]uint32
	since     int64 // when cur started, ms since the epoch (0: never)
}

func latBucket(ms int64) int {
	if ms < 4 {
		return int(max(ms, 0))
	}
	if ms >= 1<<latMaxShift {
		return latBuckets - 1
	}
	l := bits.Len64(uint64(ms)) // ms in [2^(l-1), 2^l)
	return 4*(l-2) + int((ms>>(l-3))&3)
}

// latLower returns the smallest latency (ms) of bucket i.
func latLower(i int) int64 {
	if i < 4 {
		return int64(i)
	}
	l := i/4 + 2
	return int64(4+i%4) << (l - 3)
}

// rotate moves to a new half when the current one is RateWindow/2 old.
func (h *LatencyHist) rotate(nowMs int64) {
	half := RateWindow.Milliseconds() / 2
	if nowMs-h.since < half {
		return
	}
	if nowMs-h.since < 2*half {
		h.prev = h.cur
	} else {
		h.prev = [latBuckets]uint32{}
	}
	h.cur = [latBuckets]uint32{}
	h.since = nowMs
}

// Observe records one record of timestamp ts processed at nowMs.
func (h *LatencyHist) Observe(nowMs, ts int64) {
	if nowMs-h.since >= RateWindow.Milliseconds()/2 {
		h.rotate(nowMs)
	}
	h.cur[latBucket(nowMs-ts)]++
}

// Quantiles returns the 50th and 99th percentiles of the latencies
// observed over about RateWindow before nowMs, each rounded down to its
// bucket's lower bound (exact below 4 ms, within 25% above); zero when
// nothing was observed.
func (h *LatencyHist) Quantiles(nowMs int64) (p50, p99 time.Duration) {
	h.rotate(nowMs)
	var total uint64
	for i := range h.cur {
		total += uint64(h.cur[i]) + uint64(h.prev[i])
	}
	if total == 0 {
		return 0, 0
	}
	rank50, rank99 := (total+1)/2, (total*99+99)/100
	var seen uint64
	var got50 bool
	for i := range h.cur {
		seen += uint64(h.cur[i]) + uint64(h.prev[i])
		if !got50 && seen >= rank50 {
			p50, got50 = time.Duration(latLower(i))*time.Millisecond, true
		}
		if seen >= rank99 {
			return p50, time.Duration(latLower(i)) * time.Millisecond
		}
	}
	return p50, p50
}

// TaskStats are a task's own counters (see Task.Stats).
type TaskStats struct {
	// Processed counts records taken from the queues (control records
	// excluded); ProcTime is the wall time Process and Drain spent on
	// them.
	Processed int64
	ProcTime  time.Duration
	// Sampled counts the records timed node by node.
	Sampled int64
}

// PartitionStats are one input partition's numbers as the task knows them.
type PartitionStats struct {
	Topic     string
	Partition int32
	// Lag is the partition's end minus the task's position in it; -1
	// while either is unknown.
	Lag      int64
	Buffered int
	// LatencyP50 and LatencyP99: see LatencyHist.Quantiles.
	LatencyP50, LatencyP99 time.Duration
}

// Partitions returns the numbers of t's input partitions at now (the
// wall clock of the task's Env), in the order of t.Queues.
func (t *Task) Partitions(now time.Time) []PartitionStats {
	out := make([]PartitionStats, len(t.Queues))
	for i, q := range t.Queues {
		lag, ok := q.lag()
		if !ok {
			lag = -1
		}
		p50, p99 := q.Latency.Quantiles(Millis(now))
		out[i] = PartitionStats{Topic: q.Topic, Partition: q.Partition, Lag: lag, Buffered: q.Len(), LatencyP50: p50, LatencyP99: p99}
	}
	return out
}
