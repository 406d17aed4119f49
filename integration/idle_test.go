package integration

import (
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/integration/kafkatest"
	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
	"github.com/streamwork-go/streamwork/state"
)

// idlePricer prices each order (key product, value order id) from the
// table store "prices" when the order is processed: "<order>@<price>" or
// "<order>@none".
type idlePricer struct {
	ctx    kstream.ProcessorContext[string, string]
	prices *state.KeyValue[string, int64]
}

func (p *idlePricer) Init(ctx kstream.ProcessorContext[string, string]) error {
	p.ctx = ctx
	var err error
	p.prices, err = kstream.StoreOf(ctx, "prices", serde.String, serde.Int64)
	return err
}

func (p *idlePricer) Process(r kstream.Record[string, string]) error {
	price, ok, err := p.prices.Get(r.Key)
	if err != nil {
		return err
	}
	v := r.Value + "@none"
	if ok {
		v = r.Value + "@" + strconv.FormatInt(price, 10)
	}
	p.ctx.Forward(kstream.Record[string, string]{Key: r.Key, Value: v, Timestamp: r.Timestamp})
	return nil
}

func (p *idlePricer) Close() error { return nil }

// MaxTaskIdle on the real broker, with a task reading a stream (orders)
// and a table (prices): with both inputs written before the App starts, the
// default processes them in timestamp order (each order gets the price of
// its time); with MaxTaskIdle, an order fetched while the prices topic is
// empty and caught up waits for a price written later; after MaxTaskIdle
// it goes without one, counted as enforced processing.
func TestMaxTaskIdleOnRealBroker(t *testing.T) {
	b := kafkatest.Require(t)
	ctx := testContext(t)
	base := time.Now().Add(-time.Hour).UnixMilli()
	setup := func(name string) (orders, prices, priced string, topo *kstream.Topology, appID string) {
		orders, prices, priced = newTopic(t, b, name+"-orders", 1), newTopic(t, b, name+"-prices", 1), newTopic(t, b, name+"-priced", 1)
		appID = kafkatest.UniqueName(t, name)
		deleteTopicsAtEnd(t, b, appID+"-prices-changelog")
		bld := kstream.NewBuilder()
		kstream.TableFrom(bld, prices, serde.String, serde.Int64, kstream.StoreName("prices"))
		kstream.Process(kstream.From(bld, orders, serde.String, serde.String),
			func() kstream.Processor[string, string, string, string] { return &idlePricer{} }, kstream.UseStores("prices")).
			To(priced, serde.String, serde.String)
		var err error
		if topo, err = bld.Build(); err != nil {
			t.Fatal(err)
		}
		return orders, prices, priced, topo, appID
	}
	order := func(topic string, at int64, id string) *kgo.Record {
		return &kgo.Record{Topic: topic, Key: []byte("p"), Value: []byte(id), Timestamp: time.UnixMilli(base + at)}
	}
	price := func(topic string, at, p int64) *kgo.Record {
		v, _ := serde.Int64.Serialize(topic, p)
		return &kgo.Record{Topic: topic, Key: []byte("p"), Value: v, Timestamp: time.UnixMilli(base + at)}
	}
	values := func(recs []*kgo.Record) []string {
		var out []string
		for _, r := range recs {
			out = append(out, string(r.Value))
		}
		return out
	}
	prod := producer(t, b)

	t.Run("timestamp order", func(t *testing.T) {
		orders, prices, priced, topo, appID := setup("idle-order")
		produce(ctx, t, prod, []*kgo.Record{order(orders, 20, "o1"), order(orders, 40, "o2"), order(orders, 60, "o3"),
			price(prices, 10, 1), price(prices, 30, 2), price(prices, 50, 3)})
		app := startApp(t, b, "app", topo, kstream.ApplicationID(appID), kstream.StateDir(t.TempDir()))
		rd := newReader(t, b, priced)
		rd.readUntil(ctx, "3 priced orders", func() bool { return rd.count(priced) >= 3 }, app)
		if got := values(rd.records(priced)); len(got) != 3 || got[0] != "o1@1" || got[1] != "o2@2" || got[2] != "o3@3" {
			t.Fatalf("priced %v, want [o1@1 o2@2 o3@3]", got)
		}
		if err := app.stop(t); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("waits for the other input", func(t *testing.T) {
		orders, prices, priced, topo, appID := setup("idle-wait")
		produce(ctx, t, prod, []*kgo.Record{order(orders, 20, "o1")})
		app := startApp(t, b, "app", topo, kstream.ApplicationID(appID), kstream.StateDir(t.TempDir()), kstream.MaxTaskIdle(time.Minute))
		waitFor(ctx, t, "the order to be fetched", func() bool {
			_, ok := app.Metrics().Lag[orders][0]
			return ok
		}, app)
		produce(ctx, t, prod, []*kgo.Record{price(prices, 10, 7), price(prices, 30, 8)})
		rd := newReader(t, b, priced)
		rd.readUntil(ctx, "the priced order", func() bool { return rd.count(priced) >= 1 }, app)
		if got := values(rd.records(priced)); len(got) != 1 || got[0] != "o1@7" {
			t.Fatalf("priced %v, want [o1@7]", got)
		}
		if n := app.Metrics().EnforcedProcessing; n != 0 {
			t.Fatalf("EnforcedProcessing = %d, want 0", n)
		}
		if err := app.stop(t); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("enforced after the idle time", func(t *testing.T) {
		orders, _, priced, topo, appID := setup("idle-enforce")
		produce(ctx, t, prod, []*kgo.Record{order(orders, 20, "o1")})
		app := startApp(t, b, "app", topo, kstream.ApplicationID(appID), kstream.StateDir(t.TempDir()), kstream.MaxTaskIdle(500*time.Millisecond))
		rd := newReader(t, b, priced)
		rd.readUntil(ctx, "the priced order", func() bool { return rd.count(priced) >= 1 }, app)
		if got := values(rd.records(priced)); len(got) != 1 || got[0] != "o1@none" {
			t.Fatalf("priced %v, want [o1@none]", got)
		}
		if n := app.Metrics().EnforcedProcessing; n != 1 {
			t.Fatalf("EnforcedProcessing = %d, want 1", n)
		}
		if err := app.stop(t); err != nil {
			t.Fatal(err)
		}
	})
}
