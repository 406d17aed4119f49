package integration

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/integration/kafkatest"
	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
)

// copyTopology copies in to out byte for byte.
func copyTopology(t *testing.T, in, out string) *kstream.Topology {
	t.Helper()
	bld := kstream.NewBuilder()
	kstream.From(bld, in, serde.String, serde.Bytes, kstream.Named("source")).
		To(out, serde.String, serde.Bytes, kstream.Named("sink"))
	topo, err := bld.Build()
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return topo
}

// limitRecord is a record of the limits tests: key k, a value of size
// bytes, timestamped an hour ago, on partition 0.
func limitRecord(topic, k string, size int) *kgo.Record {
	return &kgo.Record{Topic: topic, Key: []byte(k), Value: []byte(strings.Repeat("v", size)), Timestamp: time.Now().Add(-time.Hour)}
}

// TestInputTopicMissingAtStart runs an App whose input topic does not
// exist: Run returns ErrMissingTopic naming it, at once.
func TestInputTopicMissingAtStart(t *testing.T) {
	b := kafkatest.Require(t)
	missing := kafkatest.UniqueName(t, "absent")
	start := time.Now()
	app := startApp(t, b, "missing", copyTopology(t, missing, kafkatest.UniqueName(t, "out")),
		kstream.ApplicationID(kafkatest.UniqueName(t, "app")))
	err := app.wait(t)
	if !errors.Is(err, kstream.ErrMissingTopic) || !strings.Contains(err.Error(), strconv.Quote(missing)) {
		t.Fatalf("Run returned %v, want ErrMissingTopic naming %q", err, missing)
	}
	t.Logf("Run returned after %v: %v", time.Since(start).Round(time.Millisecond), err)
}

// TestInputTopicDeletedWhileRunning deletes the input topic of a running
// App: Run returns an error wrapping ErrMissingTopic that names the topic,
// within a bounded time, after committing what it processed.
func TestInputTopicDeletedWhileRunning(t *testing.T) {
	b := kafkatest.Require(t)
	ctx := testContext(t)
	in := newTopic(t, b, "in", 2)
	out := newTopic(t, b, "out", 1)
	appID := kafkatest.UniqueName(t, "app")
	app := startApp(t, b, "deleted", copyTopology(t, in, out),
		kstream.ApplicationID(appID), kstream.CommitInterval(100*time.Millisecond))
	var recs []*kgo.Record
	for i := range 10 {
		r := limitRecord(in, "k"+strconv.Itoa(i), 10)
		r.Partition = int32(i % 2)
		recs = append(recs, r)
	}
	produce(ctx, t, producer(t, b), recs)
	rd := newReader(t, b, out)
	rd.readCounts(ctx, map[string]int{out: 10}, app)
	adm := b.Admin(t)
	waitFor(ctx, t, "the input to be committed", func() bool {
		c := committedOffsets(ctx, t, adm, appID, in)
		return c[0] == 5 && c[1] == 5
	}, app)

	deleted := time.Now()
	resp, err := adm.DeleteTopics(ctx, in)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("delete %s: %v", in, err)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	select {
	case <-app.done:
	case <-wctx.Done():
		t.Fatalf("Run did not return within a minute of the deletion of its input topic %q", in)
	}
	err = app.wait(t)
	if !errors.Is(err, kstream.ErrMissingTopic) || !strings.Contains(err.Error(), strconv.Quote(in)) {
		t.Fatalf("Run returned %v, want ErrMissingTopic naming %q", err, in)
	}
	t.Logf("Run returned %v after the deletion: %v", time.Since(deleted).Round(time.Millisecond), err)
}
