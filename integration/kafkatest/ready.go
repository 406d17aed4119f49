package kafkatest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	// probeTimeout bounds one readiness probe.
	probeTimeout = 10 * time.Second
	// probeInterval paces readiness probes.
	probeInterval = 250 * time.Millisecond
)

// waitReady waits, up to timeout, until the broker at addr serves metadata
// and can create and delete a topic. It gives up early if exited (which may
// be nil) closes: the broker died.
func waitReady(ctx context.Context, addr string, timeout time.Duration, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	tick := time.NewTicker(probeInterval)
	defer tick.Stop()
	for {
		last := probe(ctx, adm)
		if last == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("broker exited before it was ready (last probe: %v)", last)
		case <-ctx.Done():
			return fmt.Errorf("broker not ready within %v: %w", timeout, last)
		case <-tick.C:
		}
	}
}

// probe checks once that the broker answers metadata and creates and
// deletes a topic.
func probe(ctx context.Context, adm *kadm.Client) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	md, err := adm.BrokerMetadata(ctx)
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	if len(md.Brokers) == 0 {
		return errors.New("metadata lists no brokers")
	}
	var suffix [6]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return err
	}
	topic := "streamwork-ready-" + hex.EncodeToString(suffix[:])
	if _, err := adm.CreateTopic(ctx, 1, -1, nil, topic); err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	if _, err := adm.DeleteTopic(ctx, topic); err != nil {
		return fmt.Errorf("delete topic %s: %w", topic, err)
	}
	return nil
}
