package integration

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/integration/kafkatest"
)

// txnTimeout bounds each test's produce and consume.
const txnTimeout = 90 * time.Second

// txnLog is a one-partition topic holding a committed transaction followed
// by an aborted one.
type txnLog struct {
	topic     string
	committed []string // values of the committed transaction, in order
	aborted   []string // values of the aborted transaction, in order
	end       int64    // high watermark after both transactions ended
}

// writeCommittedThenAborted commits n records and then aborts m other
// records with one transactional producer.
func writeCommittedThenAborted(ctx context.Context, t *testing.T, b *kafkatest.Broker, n, m int) txnLog {
	t.Helper()
	log := txnLog{topic: kafkatest.UniqueName(t, "txn")}
	b.CreateTopic(t, log.topic, 1, nil)
	for i := range n {
		log.committed = append(log.committed, fmt.Sprintf("committed-%d", i))
	}
	for i := range m {
		log.aborted = append(log.aborted, fmt.Sprintf("aborted-%d", i))
	}

	producer := b.Client(t,
		kgo.TransactionalID(kafkatest.UniqueName(t, "txid")),
		kgo.DefaultProduceTopic(log.topic),
	)
	transact := func(values []string, end kgo.TransactionEndTry) {
		t.Helper()
		if err := producer.BeginTransaction(); err != nil {
			t.Fatalf("begin transaction: %v", err)
		}
		records := make([]*kgo.Record, len(values))
		for i, v := range values {
			records[i] = kgo.StringRecord(v)
		}
		if err := producer.ProduceSync(ctx, records...).FirstErr(); err != nil {
			t.Fatalf("produce in transaction: %v", err)
		}
		if err := producer.EndTransaction(ctx, end); err != nil {
			t.Fatalf("end transaction (commit=%v): %v", end, err)
		}
	}
	transact(log.committed, kgo.TryCommit)
	transact(log.aborted, kgo.TryAbort)

	offsets, err := b.Admin(t).ListEndOffsets(ctx, log.topic)
	if err != nil {
		t.Fatalf("list end offsets: %v", err)
	}
	o, ok := offsets.Lookup(log.topic, 0)
	if !ok || o.Err != nil {
		t.Fatalf("end offset of %s/0: found=%v err=%v", log.topic, ok, o.Err)
	}
	log.end = o.Offset
	// Each transaction ends with one control record (its marker).
	if want := int64(n + 1 + m + 1); log.end != want {
		t.Fatalf("high watermark = %d, want %d (%d committed, %d aborted, 2 markers)", log.end, want, n, m)
	}
	return log
}

// readAll reads the topic from its start with the given isolation until the
// consumer has passed the last offset before end, and returns the data
// records' values in order. Control records (transaction markers) are kept
// by the client only so that reaching the end is observable: the last
// offset is the abort marker, which every isolation level returns.
func readAll(ctx context.Context, t *testing.T, b *kafkatest.Broker, topic string, end int64, isolation kgo.IsolationLevel) []string {
	t.Helper()
	consumer := b.Client(t,
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(isolation),
		kgo.KeepControlRecords(),
	)
	var values []string
	for reached := false; !reached; {
		fetches := consumer.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("did not reach offset %d of %s before the deadline (read so far: %q): %v", end-1, topic, values, err)
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			t.Fatalf("fetch %s/%d: %v", topic, partition, err)
		})
		fetches.EachRecord(func(r *kgo.Record) {
			if r.Offset >= end-1 {
				reached = true
			}
			if !r.Attrs.IsControl() {
				values = append(values, string(r.Value))
			}
		})
	}
	return values
}

// TestReadCommittedSeesOnlyCommittedTransaction proves the broker is ready
// for exactly-once processing: a read_committed consumer reading the whole
// log sees exactly the committed transaction's records, in order, and none
// of the aborted one's.
func TestReadCommittedSeesOnlyCommittedTransaction(t *testing.T) {
	b := kafkatest.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), txnTimeout)
	defer cancel()

	log := writeCommittedThenAborted(ctx, t, b, 5, 3)
	got := readAll(ctx, t, b, log.topic, log.end, kgo.ReadCommitted())
	if !slices.Equal(got, log.committed) {
		t.Fatalf("read_committed consumer read %q, want exactly %q", got, log.committed)
	}
}

// TestReadUncommittedSeesAbortedTransaction proves the aborted transaction
// really wrote its records: a read_uncommitted consumer sees both
// transactions, in order.
func TestReadUncommittedSeesAbortedTransaction(t *testing.T) {
	b := kafkatest.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), txnTimeout)
	defer cancel()

	log := writeCommittedThenAborted(ctx, t, b, 4, 6)
	got := readAll(ctx, t, b, log.topic, log.end, kgo.ReadUncommitted())
	want := slices.Concat(log.committed, log.aborted)
	if !slices.Equal(got, want) {
		t.Fatalf("read_uncommitted consumer read %q, want %q", got, want)
	}
}
