package kstream_test

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
)

// exampleCluster starts an in-process fake cluster with "orders" (two
// partitions, records 3 and 1) and the changelog topic of application
// "shop", whose group committed offset 2 on partition 0.
func exampleCluster(ctx context.Context) (*kfake.Cluster, *kadm.Client, func(), error) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "orders", "shop-totals-changelog"))
	if err != nil {
		return nil, nil, nil, err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		cluster.Close()
		return nil, nil, nil, err
	}
	done := func() { cl.Close(); cluster.Close() }
	for i, p := range []int32{0, 0, 0, 1} {
		r := &kgo.Record{Topic: "orders", Partition: p, Value: []byte{byte(i)}}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			done()
			return nil, nil, nil, err
		}
	}
	adm := kadm.NewClient(cl)
	offs := make(kadm.Offsets)
	offs.Add(kadm.Offset{Topic: "orders", Partition: 0, At: 2, LeaderEpoch: -1})
	if _, err := adm.CommitOffsets(ctx, "shop", offs); err != nil {
		done()
		return nil, nil, nil, err
	}
	return cluster, adm, done, nil
}

// Describe a stopped application: no members; its committed offsets, end
// offsets and lag per input partition.
func ExampleDescribeApplication() {
	ctx := context.Background()
	_, adm, done, err := exampleCluster(ctx)
	if err != nil {
		fmt.Println("cluster:", err)
		return
	}
	defer done()
	b := kstream.NewBuilder()
	kstream.From(b, "orders", serde.String, serde.String).To("out", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		fmt.Println("build:", err)
		return
	}
	d, err := kstream.DescribeApplication(ctx, adm, "shop", kstream.WithTopology(topo.Describe()))
	if err != nil {
		fmt.Println("describe:", err)
		return
	}
	fmt.Println("members:", len(d.Members))
	for _, p := range d.Partitions {
		fmt.Printf("%s/%d committed %d end %d lag %d\n", p.Topic, p.Partition, p.Committed, p.End, p.Lag)
	}
	// Output:
	// members: 0
	// orders/0 committed 2 end 3 lag 1
	// orders/1 committed -1 end 1 lag 1
}

// Reset a stopped application to the start of its input, deleting its
// internal topics. DryRun only reports what it would do.
func ExampleResetApplication() {
	ctx := context.Background()
	_, adm, done, err := exampleCluster(ctx)
	if err != nil {
		fmt.Println("cluster:", err)
		return
	}
	defer done()
	for _, dry := range []bool{true, false} {
		res, err := kstream.ResetApplication(ctx, adm, "shop", kstream.ResetOptions{Inputs: []string{"orders"}, DryRun: dry})
		if err != nil {
			fmt.Println("reset:", err)
			return
		}
		fmt.Print(res)
	}
	d, err := kstream.DescribeApplication(ctx, adm, "shop")
	if err != nil {
		fmt.Println("describe:", err)
		return
	}
	for _, p := range d.Partitions {
		fmt.Printf("%s/%d committed %d lag %d\n", p.Topic, p.Partition, p.Committed, p.Lag)
	}
	// Output:
	// would reset offset orders/0: 2 -> 0
	// would reset offset orders/1: none -> 0
	// would delete topic shop-totals-changelog
	// reset offset orders/0: 2 -> 0
	// reset offset orders/1: none -> 0
	// delete topic shop-totals-changelog
	// orders/0 committed 0 lag 3
	// orders/1 committed 0 lag 1
}
