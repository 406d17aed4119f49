package kstream

import (
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/serde"
	"github.com/streamwork-go/streamwork/state"
)

// priceLookup prices each order (key: product, value: order id) with the
// product's price in the table "prices" when the order is processed:
// "<order>@<price>", or "<order>@none".
type priceLookup struct {
	ctx    ProcessorContext[string, string]
	prices *state.KeyValue[string, int64]
}

func (p *priceLookup) Init(ctx ProcessorContext[string, string]) error {
	p.ctx = ctx
	var err error
	p.prices, err = StoreOf(ctx, "prices", serde.String, serde.Int64)
	return err
}

func (p *priceLookup) Process(r Record[string, string]) error {
	price, ok, err := p.prices.Get(r.Key)
	if err != nil {
		return err
	}
	v := r.Value + "@none"
	if ok {
		v = r.Value + "@" + strconv.FormatInt(price, 10)
	}
	p.ctx.Forward(Record[string, string]{Key: r.Key, Value: v, Timestamp: r.Timestamp})
	return nil
}

func (p *priceLookup) Close() error { return nil }

// pricedOrders is a stream-table topology: the orders of "orders" priced
// from the table of "prices" into "priced". One task reads both topics.
func pricedOrders(t *testing.T) *Topology {
	t.Helper()
	b := NewBuilder()
	TableFrom(b, "prices", serde.String, serde.Int64, StoreName("prices"), InMemory())
	Process(From(b, "orders", serde.String, serde.String),
		func() Processor[string, string, string, string] { return &priceLookup{} }, UseStores("prices")).
		To("priced", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func priceRec(ms, price int64) *kgo.Record {
	v, _ := serde.Int64.Serialize("prices", price)
	return &kgo.Record{Topic: "prices", Partition: 0, Key: []byte("p"), Value: v, Timestamp: time.UnixMilli(ms)}
}

func orderRec(ms int64, id string) *kgo.Record {
	return &kgo.Record{Topic: "orders", Partition: 0, Key: []byte("p"), Value: []byte(id), Timestamp: time.UnixMilli(ms)}
}

func pricedValues(recs []*kgo.Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, string(r.Value))
	}
	return out
}

// With both inputs in Kafka before it starts, an App with the default
// MaxTaskIdle processes a stream and a table in timestamp order: each
// order sees the price of its time, whichever topic a fetch brings first.
// Only the last order, after the last price, goes with the prices
// partition empty (and caught up): one enforced processing.
func TestAppProcessesStreamAndTableInTimestampOrder(t *testing.T) {
	brokers := rtCluster(t, map[string]int32{"orders": 1, "prices": 1, "priced": 1})
	rtProduce(t, brokers, []*kgo.Record{
		orderRec(20, "o1"), orderRec(40, "o2"), orderRec(60, "o3"),
		priceRec(10, 1), priceRec(30, 2), priceRec(50, 3),
	})
	app, err := New(pricedOrders(t), rtOpts(t, brokers, "idle-order", StoreEngine(MemoryEngine))...)
	if err != nil {
		t.Fatal(err)
	}
	rtRun(t, app)
	got := pricedValues(rtConsume(t, brokers, "priced").until(3))
	if want := []string{"o1@1", "o2@2", "o3@3"}; !equalStrings(got, want) {
		t.Fatalf("priced = %v, want %v", got, want)
	}
	if m := app.Metrics(); m.EnforcedProcessing != 1 {
		t.Errorf("EnforcedProcessing = %d, want 1", m.EnforcedProcessing)
	}
}

// With MaxTaskIdle, an order fetched while the prices topic is empty (and
// caught up: the App looks that up, as no fetch says so) waits for its
// price, produced later. (The price after it keeps the prices topic from
// draining before the order is processed, which would start a new wait.)
func TestAppWaitsMaxTaskIdleForTheOtherInput(t *testing.T) {
	brokers := rtCluster(t, map[string]int32{"orders": 1, "prices": 1, "priced": 1})
	rtProduce(t, brokers, []*kgo.Record{orderRec(20, "o1")})
	app, err := New(pricedOrders(t), rtOpts(t, brokers, "idle-wait", StoreEngine(MemoryEngine), MaxTaskIdle(time.Minute))...)
	if err != nil {
		t.Fatal(err)
	}
	rtRun(t, app)
	rtWaitFor(t, "the order to be fetched", func() bool {
		_, ok := app.Metrics().Lag["orders"][0]
		return ok
	})
	rtProduce(t, brokers, []*kgo.Record{priceRec(10, 7), priceRec(30, 8)})
	got := pricedValues(rtConsume(t, brokers, "priced").until(1))
	if want := []string{"o1@7"}; !equalStrings(got, want) {
		t.Fatalf("priced = %v, want %v", got, want)
	}
	if m := app.Metrics(); m.EnforcedProcessing != 0 {
		t.Errorf("EnforcedProcessing = %d, want 0", m.EnforcedProcessing)
	}
}

// Once MaxTaskIdle has passed with the prices topic empty, the order goes
// without a price, counted.
func TestAppProcessesWithoutEmptyInputAfterMaxTaskIdle(t *testing.T) {
	brokers := rtCluster(t, map[string]int32{"orders": 1, "prices": 1, "priced": 1})
	rtProduce(t, brokers, []*kgo.Record{orderRec(20, "o1")})
	app, err := New(pricedOrders(t), rtOpts(t, brokers, "idle-enforce", StoreEngine(MemoryEngine), MaxTaskIdle(200*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	rtRun(t, app)
	got := pricedValues(rtConsume(t, brokers, "priced").until(1))
	if want := []string{"o1@none"}; !equalStrings(got, want) {
		t.Fatalf("priced = %v, want %v", got, want)
	}
	if m := app.Metrics(); m.EnforcedProcessing != 1 {
		t.Errorf("EnforcedProcessing = %d, want 1", m.EnforcedProcessing)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
