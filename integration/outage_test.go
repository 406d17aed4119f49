package integration

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/integration/kafkatest"
	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
)

// outageLength is how long the broker stays down: longer than the runtime's
// one-minute bound on a single producer flush, which made an outage of
// about a minute stop the App before.
const outageLength = 70 * time.Second

// Regression: a broker outage of about a minute stopped the App ("kstream:
// flush the producer: context deadline exceeded" from the fixed one-minute
// commit flush, returned as fatal). Two Apps, at-least-once and
// exactly-once, have records in flight when the broker stops; it stays down
// past the flush bound, the request timeouts and the session timeout, then
// starts again. Both Apps recover by themselves (Run never returns), the
// at-least-once output holds every input at least once and the exactly-once
// output (read committed) every input exactly once. The test logs, per App,
// a line of figures: how long after the broker came back the first new
// output appeared and every input had one, and how many records were
// redone (outputs beyond one per input: at-least-once duplicates, counted
// exactly once the Apps stopped; exactly-once 0).
func TestBrokerOutageIsSurvived(t *testing.T) {
	kafkatest.Require(t) // the shared broker's harness (signals, cleanup)
	r := kafkatest.StartRestartable(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	t.Cleanup(cancel)

	const (
		parts = 3
		first = 600 // processed before the outage
		total = 1200
	)
	in := newTopic(t, r.Broker, "outage-in", parts)
	gate := make(chan struct{}) // closed once the broker is down
	type run struct {
		name    string
		g       kstream.DeliveryGuarantee
		out     string
		reached chan struct{} // closed when the App holds a record past first
		app     *runningApp
	}
	runs := []*run{
		{name: "alos", g: kstream.AtLeastOnce},
		{name: "eos", g: kstream.ExactlyOnce},
	}
	for _, rn := range runs {
		rn.out = newTopic(t, r.Broker, "outage-out-"+rn.name, parts)
		rn.reached = make(chan struct{})
		var once sync.Once
		b := kstream.NewBuilder()
		kstream.MapValues(kstream.From(b, in, serde.String, serde.String), func(v string) string {
			if i, _ := strconv.Atoi(strings.TrimPrefix(v, "v")); i >= first {
				once.Do(func() { close(rn.reached) })
				<-gate // the records past first wait for the outage
			}
			return v
		}).To(rn.out, serde.String, serde.String)
		topo, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		rn.app = startApp(t, r.Broker, rn.name, topo,
			kstream.ApplicationID(kafkatest.UniqueName(t, "outage-"+rn.name)),
			kstream.Guarantee(rn.g), kstream.CommitInterval(200*time.Millisecond),
			kstream.StoreEngine(kstream.MemoryEngine))
	}
	apps := []*runningApp{runs[0].app, runs[1].app}

	recs := make([]*kgo.Record, total)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: in, Partition: int32(i % parts), Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("v%d", i))}
	}
	prod := producer(t, r.Broker)
	produce(ctx, t, prod, recs[:first])
	for _, rn := range runs {
		newReader(t, r.Broker, rn.out).readCounts(ctx, map[string]int{rn.out: first}, apps...)
	}
	produce(ctx, t, prod, recs[first:])
	for _, rn := range runs {
		select {
		case <-rn.reached:
		case <-ctx.Done():
			t.Fatalf("%s never fetched the records past %d", rn.name, first)
		}
	}

	// The Apps hold records whose outputs cannot be written now.
	r.Stop(t)
	down := time.Now()
	close(gate)
	for time.Since(down) < outageLength {
		for _, a := range apps {
			if err, stopped := a.exited(); stopped {
				t.Fatalf("App %s stopped during the outage: %v", a.name, err)
			}
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(time.Second):
		}
	}
	r.Start(t)
	up := time.Now()

	// Both outputs are read in one loop, so each App's figures are timed
	// alike (to within a reader's poll, a quarter second at most): when the
	// first record past the first phase's outputs appeared, and when every
	// input had an output.
	type figures struct {
		rd              *reader
		firstNew, whole time.Duration // since the broker came back; 0: not yet
	}
	figs := make([]*figures, len(runs))
	for i, rn := range runs {
		figs[i] = &figures{rd: newReader(t, r.Broker, rn.out)}
	}
	seen := map[string]int{}
	for pending := len(runs); pending > 0; {
		if err := ctx.Err(); err != nil {
			t.Fatalf("waiting for all %d values in the outputs: %v", total, err)
		}
		for _, a := range apps {
			if err, stopped := a.exited(); stopped {
				t.Fatalf("App %s stopped on its own after the outage: %v", a.name, err)
			}
		}
		for i, rn := range runs {
			f := figs[i]
			if f.whole > 0 {
				continue
			}
			before := f.rd.total()
			f.rd.poll(ctx)
			if f.rd.total() > before {
				f.rd.progress = time.Now()
			} else if time.Since(f.rd.progress) > readerStall {
				f.rd.reopenIfBehind(ctx)
			}
			if f.firstNew == 0 && f.rd.count(rn.out) > first {
				f.firstNew = time.Since(up)
			}
			clear(seen)
			for _, rec := range f.rd.records(rn.out) {
				seen[string(rec.Value)]++
			}
			if len(seen) == total {
				f.whole = time.Since(up)
				pending--
			}
		}
	}
	for _, a := range apps {
		if err := a.stop(t); err != nil {
			t.Errorf("App %s: Run returned %v", a.name, err)
		}
	}

	// With the Apps stopped, each output is read to its end: the records
	// redone are the outputs beyond one per input (at-least-once redoes
	// what it processed since its last commit; exactly-once aborts it, and
	// read committed sees it once).
	for i, rn := range runs {
		f := figs[i]
		f.rd.readToEnd(ctx)
		clear(seen)
		for _, rec := range f.rd.records(rn.out) {
			seen[string(rec.Value)]++
		}
		got := len(f.rd.records(rn.out))
		redone := got - len(seen)
		t.Logf("outage figures: %s: broker down %v; first new output %v after the broker came back, all %d inputs after %v; %d records redone (%d outputs for %d inputs)",
			rn.name, outageLength, f.firstNew.Round(time.Millisecond), total, f.whole.Round(time.Millisecond), redone, got, total)
		if len(seen) != total {
			t.Errorf("%s: %d distinct values in %s, want %d", rn.name, len(seen), rn.out, total)
		}
		if rn.g != kstream.ExactlyOnce {
			continue
		}
		for v, n := range seen {
			if n != 1 {
				t.Errorf("exactly-once: %s written %d times", v, n)
			}
		}
		if got != total {
			t.Errorf("exactly-once: %d records in %s, want %d", got, rn.out, total)
		}
	}
}
