// Package testhook connects kstream/kstreamtest to the unexported engine of
// kstream, so the test driver runs the same task code as the App runtime
// without kstream exporting its internals.
package testhook

import (
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Driver is the engine side of kstreamtest.Driver.
type Driver interface {
	// Pipe feeds one input record (Topic, Key, Value, Headers, Timestamp
	// set; Partition and Offset are assigned) and processes it fully.
	Pipe(r *kgo.Record) error
	// AdvanceWallClock moves the wall clock and fires due punctuators.
	AdvanceWallClock(d time.Duration) error
	// Now returns the driver's wall-clock time.
	Now() time.Time
	// TakeOutput removes and returns what was written to topic so far.
	TakeOutput(topic string) []*kgo.Record
	// Metrics returns a kstream.Metrics.
	Metrics() any
	// Close closes every task.
	Close() error
}

// NewDriver is set by package kstream's init. topology is a *kstream.Topology
// and opts are kstream.Opt values.
var NewDriver func(topology any, start time.Time, opts []any) (Driver, error)
