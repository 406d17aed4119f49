package kafkatest

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Broker is the real Apache Kafka cluster shared by a test binary's tests.
// It is returned by [Require], lives until [Main] stops it, and is safe for
// concurrent use.
type Broker struct {
	// Addrs are the bootstrap host:port addresses of the cluster.
	Addrs []string
	// Version is the Apache Kafka version, such as "4.3.1", or the best
	// guess from the cluster's API versions when it was not started here
	// (such as "4.1" or "at least 4.4"), or "unknown".
	Version string
	// Provider names where the broker came from: "env", "testcontainers"
	// or "jvm".
	Provider string
}

// adminTimeout bounds each admin call the helpers make.
const adminTimeout = 30 * time.Second

// Client returns a new franz-go client seeded with the broker's addresses
// plus opts; it is closed when t ends.
func (b *Broker) Client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	all := append([]kgo.Opt{kgo.SeedBrokers(b.Addrs...)}, opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		t.Fatalf("kafkatest: new client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// Admin returns an admin client for the broker; its underlying client is
// closed when t ends.
func (b *Broker) Admin(t testing.TB) *kadm.Client {
	t.Helper()
	return kadm.NewClient(b.Client(t))
}

// CreateTopic creates topic with the given partitions, the cluster's default
// replication factor and configs (nil for none), failing t if that fails.
// The topic is deleted, best effort, when t ends. Pair it with
// [UniqueName]: the broker is shared by every test in the package.
func (b *Broker) CreateTopic(t testing.TB, name string, partitions int32, configs map[string]*string) {
	t.Helper()
	// A short metadata age, so the wait below sees the new topic at once
	// rather than after kgo's default 5s cache.
	adm := kadm.NewClient(b.Client(t, kgo.MetadataMinAge(50*time.Millisecond)))
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, partitions, -1, configs, name); err != nil {
		t.Fatalf("kafkatest: create topic %q (%d partitions): %v", name, partitions, err)
	}
	// Wait until the broker's metadata shows every partition with a leader:
	// a client asking right after CreateTopic may otherwise not see it yet.
	for {
		md, err := adm.Metadata(ctx, name)
		if err == nil {
			if td, ok := md.Topics[name]; ok && td.Err == nil && len(td.Partitions) == int(partitions) && allLed(td) {
				break
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("kafkatest: topic %q was created but its metadata is not complete: %v", name, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
		defer cancel()
		_, _ = adm.DeleteTopic(ctx, name) // best effort: the data dir goes anyway
	})
}

func allLed(td kadm.TopicDetail) bool {
	for _, p := range td.Partitions {
		if p.Leader < 0 || p.Err != nil {
			return false
		}
	}
	return true
}
