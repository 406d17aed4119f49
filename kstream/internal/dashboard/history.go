package dashboard

import (
	"time"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
)

// History is what api/history serves: the samples, oldest first.
type History struct {
	// IntervalMillis is the time between samples.
	IntervalMillis int64
	Samples        []Sample
}

// Sample is one point of the history: a few totals of a metrics snapshot.
type Sample struct {
	// Time is when it was taken, in milliseconds since the epoch.
	Time int64
	// Processed is RecordsProcessed; RecordsPerSecond its rate since the
	// previous sample (0 for the first).
	Processed        int64
	RecordsPerSecond float64
	// Lag is the lag summed over the instance's input partitions (from
	// Partitions, else from Lag; partitions of unknown lag count 0).
	Lag int64
	// Paused is the number of partitions paused for backpressure.
	Paused int
	// Utilization is the mean utilization of the workers, -1 when the
	// snapshot has no worker numbers.
	Utilization float64
}

// SampleOf takes a sample of m at now (RecordsPerSecond is left 0: the
// ring computes it against the previous sample).
func SampleOf(m engine.Metrics, now time.Time) Sample {
	s := Sample{Time: now.UnixMilli(), Processed: m.RecordsProcessed, Paused: m.Paused, Utilization: -1}
	if len(m.Partitions) > 0 {
		for _, p := range m.Partitions {
			s.Lag += max(p.Lag, 0)
		}
	} else {
		for _, ps := range m.Lag {
			for _, l := range ps {
				s.Lag += l
			}
		}
	}
	if len(m.Workers) > 0 {
		var u float64
		for _, w := range m.Workers {
			u += w.Utilization
		}
		s.Utilization = u / float64(len(m.Workers))
	}
	return s
}

// ring keeps the last HistoryLen samples.
type ring struct {
	buf  []Sample
	next int // where the next sample goes once buf is full
}

// add appends s, computing its rate against the previous sample, and drops
// the oldest sample when the ring is full.
func (r *ring) add(s Sample) {
	if n := len(r.buf); n > 0 {
		prev := r.buf[(r.next+n-1)%n]
		if dt := s.Time - prev.Time; dt > 0 {
			s.RecordsPerSecond = float64(s.Processed-prev.Processed) * 1000 / float64(dt)
		}
	}
	if len(r.buf) < HistoryLen {
		r.buf = append(r.buf, s)
		return
	}
	r.buf[r.next] = s
	r.next = (r.next + 1) % HistoryLen
}

// all returns the samples, oldest first, in a new slice.
func (r *ring) all() []Sample {
	out := make([]Sample, 0, len(r.buf))
	out = append(out, r.buf[r.next:]...)
	return append(out, r.buf[:r.next]...)
}
