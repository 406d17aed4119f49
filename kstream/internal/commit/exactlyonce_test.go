package commit

import (
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The session's TxnOffsetCommit carries the processed offsets, not the
// polled ones, and keeps the topic ids it had.
func TestTxnOffsetsReplacesThePolledOffsets(t *testing.T) {
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.MemberID = "m1"
	polled := kmsg.NewTxnOffsetCommitRequestTopic()
	polled.Topic, polled.TopicID = "in", [16]byte{7}
	p := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	p.Partition, p.Offset = 0, 900
	polled.Partitions = append(polled.Partitions, p)
	req.Topics = append(req.Topics, polled)

	fn := TxnOffsets(map[string]map[int32]kgo.EpochOffset{
		"in":          {0: {Epoch: 3, Offset: 500}, 1: {Epoch: 3, Offset: 20}},
		"repartition": {2: {Epoch: -1, Offset: 7}},
	})
	if err := fn(req); err != nil {
		t.Fatal(err)
	}
	type part struct {
		topic       string
		id          byte
		p           int32
		off         int64
		epoch       int32
		memberMatch bool
	}
	var got []part
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			got = append(got, part{rt.Topic, rt.TopicID[0], rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata != nil && *rp.Metadata == "m1"})
		}
	}
	want := []part{{"in", 7, 0, 500, 3, true}, {"in", 7, 1, 20, 3, true}, {"repartition", 0, 2, 7, -1, true}}
	if !slices.Equal(got, want) {
		t.Fatalf("request partitions = %+v, want %+v", got, want)
	}
	if polled.Partitions[0].Offset != 900 {
		t.Fatalf("the original request's topics were modified")
	}
}
