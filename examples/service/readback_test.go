package service

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ReadAll reads a topic to its end read-committed: an aborted
// transaction's record is skipped, and the end is reached though the last
// offset is a transaction marker.
func ExampleReadAll() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		panic(err)
	}
	defer cluster.Close()
	addrs := cluster.ListenAddrs()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic("ledger"), kgo.TransactionalID("writer"))
	if err != nil {
		panic(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "ledger"); err != nil {
		panic(err)
	}
	for _, tx := range []struct {
		value string
		end   kgo.TransactionEndTry
	}{{"first", kgo.TryCommit}, {"aborted", kgo.TryAbort}, {"second", kgo.TryCommit}} {
		if err := cl.BeginTransaction(); err != nil {
			panic(err)
		}
		if err := cl.ProduceSync(ctx, kgo.StringRecord(tx.value)).FirstErr(); err != nil {
			panic(err)
		}
		if err := cl.EndTransaction(ctx, tx.end); err != nil {
			panic(err)
		}
	}
	recs, err := ReadAll(ctx, addrs, "ledger")
	if err != nil {
		panic(err)
	}
	for _, r := range recs["ledger"] {
		fmt.Println(r.Offset, string(r.Value))
	}
	// Output:
	// 0 first
	// 4 second
}
