package kstream_test

import (
	"testing"

	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/kstream/kstreamtest"
	"github.com/streamwork-go/streamwork/serde"
)

type order struct {
	Customer string `json:"customer"`
	Amount   int64  `json:"amount"`
}

// Orders keyed by order id look their customer up in a global table keyed
// by customer id: no co-partitioning needed.
func TestJoinAndLeftJoinGlobal(t *testing.T) {
	b := kstream.NewBuilder()
	customers := kstream.GlobalTableFrom(b, "customers", serde.String, serde.String, kstream.StoreName("customers"))
	orders := kstream.From(b, "orders", serde.String, serde.JSON[order]())
	byCustomer := func(_ string, o order) string { return o.Customer }
	kstream.JoinGlobal(orders, customers, byCustomer, func(o order, name string) string {
		return name + " pays " + string(rune('0'+o.Amount))
	}).To("joined", serde.String, serde.String)
	kstream.LeftJoinGlobal(orders, customers, byCustomer, func(o order, name string, found bool) string {
		if !found {
			return "unknown customer " + o.Customer
		}
		return name
	}).To("left", serde.String, serde.String)
	d := mustDriver(t, b)
	cust := kstreamtest.Input(d, "customers", serde.String, serde.String)
	ord := kstreamtest.Input(d, "orders", serde.String, serde.JSON[order]())
	steps := []func() error{
		func() error { return cust.Pipe("c1", "Ann", ts(1)) },
		func() error { return ord.Pipe("o1", order{"c1", 5}, ts(2)) },
		func() error { return ord.Pipe("o2", order{"c2", 3}, ts(3)) }, // no customer yet
		func() error { return cust.Pipe("c2", "Bo", ts(4)) },
		func() error { return ord.Pipe("o3", order{"c2", 7}, ts(5)) },
		func() error { return cust.PipeTombstone("c1", ts(6)) },
		func() error { return ord.Pipe("o4", order{"c1", 1}, ts(7)) }, // deleted
	}
	for i, s := range steps {
		if err := s(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	equal(t, "joined", kstreamtest.Output(d, "joined", serde.String, serde.String).KeyValues(),
		[]kv{{Key: "o1", Value: "Ann pays 5"}, {Key: "o3", Value: "Bo pays 7"}})
	equal(t, "left", kstreamtest.Output(d, "left", serde.String, serde.String).KeyValues(),
		[]kv{{Key: "o1", Value: "Ann"}, {Key: "o2", Value: "unknown customer c2"}, {Key: "o3", Value: "Bo"}, {Key: "o4", Value: "unknown customer c1"}})
}
