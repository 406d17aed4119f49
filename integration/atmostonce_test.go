package integration

import (
	"testing"
)

// TestAtMostOnceNeverReprocessesAcrossCrash kills an at-most-once
// application mid-stream (SIGKILL, so nothing is flushed or committed on
// the way out), restarts it and lets it finish: no input record has more
// than one output, because offsets are committed before records are
// processed. The records the crash lost (fetched and committed by the
// killed run, not yet written) are counted and reported; they can only be
// records written before the crash.
func TestAtMostOnceNeverReprocessesAcrossCrash(t *testing.T) {
	o, holdAt := crashScenario(t, "at-most-once")
	if dup := o.duplicated(); len(dup) > 0 {
		for _, i := range firstN(dup, 5) {
			t.Errorf("input %d has %d outputs (by %v) under at-most-once, want at most one", i, len(o.outputs[i]), o.outputs[i])
		}
		t.Errorf("%d inputs were processed more than once under at-most-once", len(dup))
	}
	lost := o.lost()
	if len(lost) > 0 && lost[len(lost)-1] >= holdAt {
		t.Errorf("input %d, written after the crash, was lost", lost[len(lost)-1])
	}
	t.Logf("at-most-once lost %d of %d inputs in the crash", len(lost), o.n)
}
