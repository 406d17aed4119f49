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
// output (read committed) every input exactly once.
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

	for _, rn := range runs {
		rd := newReader(t, r.Broker, rn.out)
		seen := map[string]int{}
		rd.readUntil(ctx, fmt.Sprintf("all %d values in %s", total, rn.out), func() bool {
			clear(seen)
			for _, rec := range rd.records(rn.out) {
				seen[string(rec.Value)]++
			}
			return len(seen) == total
		}, apps...)
		t.Logf("%s: every input in the output %v after the broker came back", rn.name, time.Since(up).Round(time.Millisecond))
		if rn.g != kstream.ExactlyOnce {
			continue
		}
		rd.readToEnd(ctx)
		clear(seen)
		for _, rec := range rd.records(rn.out) {
			seen[string(rec.Value)]++
		}
		for v, n := range seen {
			if n != 1 {
				t.Errorf("exactly-once: %s written %d times", v, n)
			}
		}
		if len(rd.records(rn.out)) != total {
			t.Errorf("exactly-once: %d records in %s, want %d", len(rd.records(rn.out)), rn.out, total)
		}
	}
	for _, a := range apps {
		if err := a.stop(t); err != nil {
			t.Errorf("App %s: Run returned %v", a.name, err)
		}
	}
}
