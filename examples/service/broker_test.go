package service

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// testTimeout bounds each test's work against the embedded broker.
const testTimeout = 30 * time.Second

func bufferLogger() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewTextHandler(&buf, nil)), &buf
}

func TestBrokersPrefersFlagThenEnv(t *testing.T) {
	logger, logs := bufferLogger()
	t.Setenv(BrokersEnv, "env1:9092,env2:9092")

	addrs, stop, err := Brokers(context.Background(), " flag1:9092, ,flag2:9092 ", logger)
	if err != nil {
		t.Fatal(err)
	}
	stop()
	if want := []string{"flag1:9092", "flag2:9092"}; !slices.Equal(addrs, want) {
		t.Fatalf("with -brokers set, Brokers = %v, want %v", addrs, want)
	}

	addrs, stop, err = Brokers(context.Background(), "", logger)
	if err != nil {
		t.Fatal(err)
	}
	stop()
	if want := []string{"env1:9092", "env2:9092"}; !slices.Equal(addrs, want) {
		t.Fatalf("with only %s set, Brokers = %v, want %v", BrokersEnv, addrs, want)
	}
	if logs.Len() != 0 {
		t.Fatalf("Brokers logged %q without starting anything", logs.String())
	}
}

// startEmbedded starts the embedded broker and checks its one log line.
func startEmbedded(t *testing.T) []string {
	t.Helper()
	t.Setenv(BrokersEnv, "")
	logger, logs := bufferLogger()
	addrs, stop, err := Brokers(context.Background(), "", logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	t.Cleanup(stop) // stop must be safe to call twice
	if len(addrs) != 1 || !strings.HasPrefix(addrs[0], "127.0.0.1:") {
		t.Fatalf("embedded broker addrs = %v, want one loopback address", addrs)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "level=INFO") ||
		!strings.Contains(lines[0], "embedded in-process Kafka broker (kfake) at "+addrs[0]) ||
		!strings.Contains(lines[0], "-brokers") || !strings.Contains(lines[0], BrokersEnv) {
		t.Fatalf("want one info line naming kfake, %s, -brokers and %s; got:\n%s", addrs[0], BrokersEnv, logs.String())
	}
	return addrs
}

// createTopic creates a one-partition topic: auto-creation is off.
func createTopic(ctx context.Context, t *testing.T, addrs []string, topic string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		t.Fatalf("create topic: %v", err)
	}
}

// consumeOne reads one record of topic as a member of group.
func consumeOne(ctx context.Context, t *testing.T, addrs []string, topic, group string, opts ...kgo.Opt) *kgo.Record {
	t.Helper()
	consumer, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(addrs...),
		kgo.ConsumeTopics(topic),
		kgo.ConsumerGroup(group),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	for {
		fetches := consumer.PollRecords(ctx, 1)
		if err := ctx.Err(); err != nil {
			t.Fatalf("no record before the deadline: %v", err)
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			t.Fatalf("fetch %s/%d: %v", topic, partition, err)
		})
		if records := fetches.Records(); len(records) > 0 {
			return records[0]
		}
	}
}

func TestEmbeddedBrokerProducesAndConsumes(t *testing.T) {
	addrs := startEmbedded(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	createTopic(ctx, t, addrs, "greetings")

	producer, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic("greetings"))
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	if err := producer.ProduceSync(ctx, kgo.KeyStringRecord("k", "hello")).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}

	r := consumeOne(ctx, t, addrs, "greetings", "greeters")
	if string(r.Key) != "k" || string(r.Value) != "hello" {
		t.Fatalf("consumed %q=%q, want k=hello", r.Key, r.Value)
	}
}

func TestEmbeddedBrokerSupportsTransactions(t *testing.T) {
	addrs := startEmbedded(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	createTopic(ctx, t, addrs, "ledger")

	producer, err := kgo.NewClient(kgo.SeedBrokers(addrs...),
		kgo.DefaultProduceTopic("ledger"), kgo.TransactionalID("ledger-writer"))
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	transact := func(value string, end kgo.TransactionEndTry) {
		t.Helper()
		if err := producer.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := producer.ProduceSync(ctx, kgo.StringRecord(value)).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
		if err := producer.EndTransaction(ctx, end); err != nil {
			t.Fatalf("end transaction: %v", err)
		}
	}
	transact("aborted", kgo.TryAbort)
	transact("committed", kgo.TryCommit)

	r := consumeOne(ctx, t, addrs, "ledger", "auditors", kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if string(r.Value) != "committed" {
		t.Fatalf("read_committed consumer first read %q, want the committed record", r.Value)
	}
}
