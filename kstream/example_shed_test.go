package kstream_test

import (
	"fmt"
	"time"

	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/kstream/kstreamtest"
	"github.com/streamwork-go/streamwork/serde"
)

// A source that keeps up with its freshest records when it falls behind:
// records whose queue holds more than 2 records when they are taken are
// dropped and written to "clicks-shed". Here the test driver holds the
// clicks back while the "views" input is empty (MaxTaskIdle), so 5 are
// queued when the task takes them.
func ExampleShedLoad() {
	b := kstream.NewBuilder()
	kstream.FromTopics(b, []string{"clicks", "views"}, serde.String, serde.String,
		kstream.ShedLoad(kstream.ShedPolicy{MaxBuffered: 2, To: "clicks-shed"})).
		To("events", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		fmt.Println("build:", err)
		return
	}
	d, err := kstreamtest.New(topo, kstream.MaxTaskIdle(time.Second))
	if err != nil {
		fmt.Println("driver:", err)
		return
	}
	defer d.Close()
	clicks := kstreamtest.Input(d, "clicks", serde.String, serde.String)
	for i := range 5 {
		_ = clicks.Pipe("user", fmt.Sprintf("click-%d", i), time.UnixMilli(int64(i)))
	}
	_ = d.AdvanceWallClock(time.Second)
	for _, kv := range kstreamtest.Output(d, "events", serde.String, serde.String).KeyValues() {
		fmt.Println("processed", kv.Value)
	}
	for _, r := range d.TakeRaw("clicks-shed") {
		fmt.Println("shed", string(r.Value), r.Headers[0].Key, string(r.Headers[0].Value))
	}
	fmt.Println("Metrics.Shed:", d.Metrics().Shed)
	// Output:
	// processed click-3
	// processed click-4
	// shed click-0 streamwork.shed.reason buffered
	// shed click-1 streamwork.shed.reason buffered
	// shed click-2 streamwork.shed.reason buffered
	// Metrics.Shed: 3
}
