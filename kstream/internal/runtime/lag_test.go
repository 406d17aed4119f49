package runtime

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// lookUpEnds reports the last stable offset of each partition, and where
// fetching it starts: the group's committed offset once the client has
// loaded it, the log start of an empty partition, and unknown for a
// partition with records and no committed offset (the client starts it at
// the log start, a fetch tells) unless the client starts at the end.
func TestLookUpEnds(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "t"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	addrs := cluster.ListenAddrs()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	prod, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	var recs []*kgo.Record
	for p, n := range []int{0, 2, 3, 3} {
		for range n {
			recs = append(recs, &kgo.Record{Topic: "t", Partition: int32(p), Value: []byte("v")})
		}
	}
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// Partition 2 committed up to its end, 3 halfway; 1 never.
	var offs kadm.Offsets
	offs.AddOffset("t", 2, 3, -1)
	offs.AddOffset("t", 3, 1, -1)
	if _, err := kadm.NewClient(prod).CommitOffsets(ctx, "g", offs); err != nil {
		t.Fatal(err)
	}

	parts := []topicPartition{{"t", 0}, {"t", 1}, {"t", 2}, {"t", 3}}
	member, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumerGroup("g"), kgo.ConsumeTopics("t"),
		kgo.FetchMaxWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer member.Close()
	for len(member.CommittedOffsets()["t"]) < 2 {
		if member.PollFetches(ctx); ctx.Err() != nil {
			t.Fatal("the group's committed offsets were never loaded")
		}
	}
	got := lookUpEnds(ctx, member, parts)
	if got.err != nil {
		t.Fatal(got.err)
	}
	want := []partitionEnds{
		{topicPartition{"t", 0}, 0, 0},  // empty
		{topicPartition{"t", 1}, -1, 2}, // no commit: from the log start, as a fetch will tell
		{topicPartition{"t", 2}, 3, 3},  // caught up
		{topicPartition{"t", 3}, 1, 3},  // behind
	}
	if !reflect.DeepEqual(got.parts, want) {
		t.Fatalf("lookUpEnds = %+v\nwant %+v", got.parts, want)
	}

	atEnd, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeStartOffset(kgo.NewOffset().AtEnd()))
	if err != nil {
		t.Fatal(err)
	}
	defer atEnd.Close()
	got = lookUpEnds(ctx, atEnd, parts[:2])
	if want := []partitionEnds{{topicPartition{"t", 0}, 0, 0}, {topicPartition{"t", 1}, 2, 2}}; got.err != nil || !reflect.DeepEqual(got.parts, want) {
		t.Fatalf("lookUpEnds starting at the end = %+v, %v\nwant %+v", got.parts, got.err, want)
	}
}
