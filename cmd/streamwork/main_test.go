package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
)

// syncBuffer is a bytes.Buffer safe for a command writing on one goroutine
// while the test reads on another.
// Each write signals changed.
type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{}
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{changed: make(chan struct{}, 1)} }

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer func() {
		select {
		case s.changed <- struct{}{}:
		default:
		}
	}()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func runArgs(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestExitCodes(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
	}{
		{nil, exitUsage},
		{[]string{"help"}, exitOK},
		{[]string{"nosuch"}, exitUsage},
		{[]string{"describe", "-h"}, exitOK},
		{[]string{"status", "-h"}, exitOK},
		{[]string{"reset", "-h"}, exitOK},
		{[]string{"broker", "-h"}, exitOK},
		{[]string{"describe"}, exitUsage},                                           // neither -f nor -url
		{[]string{"describe", "-f", "x", "-url", "http://h/"}, exitUsage},           // both
		{[]string{"describe", "-f", "x", "-format", "dot"}, exitUsage},              // bad format
		{[]string{"describe", "-f", "x", "extra"}, exitUsage},                       // stray argument
		{[]string{"describe", "-nosuchflag"}, exitUsage},                            // unknown flag
		{[]string{"describe", "-f", filepath.Join(t.TempDir(), "none")}, exitError}, // no such file
		{[]string{"status", "-app", "a"}, exitUsage},                                // no -brokers
		{[]string{"reset", "-brokers", "b:9092"}, exitUsage},                        // no -app
		{[]string{"reset", "-brokers", "b:9092", "-app", "a", "-to-time", "yesterday"}, exitUsage},
		{[]string{"broker", "-port", "70000"}, exitUsage},
	} {
		if code, _, stderr := runArgs(c.args...); code != c.code {
			t.Errorf("run %q = %d, want %d (stderr %q)", c.args, code, c.code, stderr)
		}
	}
}

// exampleTopology is a topology with a repartition and a store.
func exampleTopology(t *testing.T) kstream.TopologyDescription {
	t.Helper()
	b := kstream.NewBuilder()
	words := kstream.From(b, "lines", serde.String, serde.String, kstream.Named("lines"))
	kstream.Count(kstream.GroupBy(words, func(_, v string) string { return v }, serde.String, serde.String, kstream.Named("by-word")),
		kstream.Named("counts")).
		ToStream().
		To("counts", serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo.Describe()
}

func TestDescribeFromFile(t *testing.T) {
	d := exampleTopology(t)
	js, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "topology.json")
	if err := os.WriteFile(file, js, 0o644); err != nil {
		t.Fatal(err)
	}
	for format, want := range map[string]string{"text": d.String(), "mermaid": d.Mermaid()} {
		code, out, stderr := runArgs("describe", "-f", file, "-format", format)
		if code != exitOK || out != want {
			t.Errorf("describe -format %s: code %d stderr %q\n got %q\nwant %q", format, code, stderr, out, want)
		}
	}
}

func TestDescribeFromURL(t *testing.T) {
	d := exampleTopology(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/streamwork/api/topology" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(d)
	}))
	defer srv.Close()
	for _, base := range []string{srv.URL + "/streamwork/", srv.URL + "/streamwork"} {
		code, out, stderr := runArgs("describe", "-url", base)
		if code != exitOK || out != d.String() {
			t.Errorf("describe -url %s: code %d stderr %q\n got %q\nwant %q", base, code, stderr, out, d.String())
		}
	}
	code, _, stderr := runArgs("describe", "-url", srv.URL+"/other/")
	if code != exitError || !strings.Contains(stderr, "404 Not Found") {
		t.Errorf("describe of a wrong URL: code %d, stderr %q", code, stderr)
	}
}

func TestWriteStatus(t *testing.T) {
	d := kstream.ApplicationDescription{
		AppID: "wordcount",
		State: "Stable",
		Members: []kstream.MemberDescription{
			{MemberID: "m-1", ClientID: "wordcount-a-w0", Host: "/10.0.0.1", InstanceID: "a", Worker: 0,
				Partitions: map[string][]int32{"lines": {0, 2}, "wordcount-by-word-repartition": {0}},
				Tasks:      []kstream.TaskID{{Subtopology: 0, Partition: 0}, {Subtopology: 0, Partition: 2}, {Subtopology: 1, Partition: 0}}},
			{MemberID: "m-2", ClientID: "wordcount-b-w0", Host: "/10.0.0.2", InstanceID: "b", Worker: 0,
				Partitions: map[string][]int32{"lines": {1}}},
		},
		Partitions: []kstream.InputPartitionDescription{
			{Topic: "lines", Partition: 0, Committed: 10, End: 12, Lag: 2, Owner: "a"},
			{Topic: "lines", Partition: 1, Committed: -1, End: 5, Lag: 5, Owner: "b"},
		},
	}
	var buf bytes.Buffer
	writeStatus(&buf, d)
	want := `application wordcount: group Stable, 2 members, total lag 7

INSTANCE  WORKER  TASKS        PARTITIONS                                 CLIENT          HOST       MEMBER
a         0       0_0,0_2,1_0  lines:0,2 wordcount-by-word-repartition:0  wordcount-a-w0  /10.0.0.1  m-1
b         0       -            lines:1                                    wordcount-b-w0  /10.0.0.2  m-2

TOPIC  PARTITION  COMMITTED  END  LAG  OWNER
lines  0          10         12   2    a
lines  1          -          5    5    b
`
	if buf.String() != want {
		t.Errorf("status:\n got:\n%s\nwant:\n%s", buf.String(), want)
	}
}

// The broker listens, serves a producer and a consumer, stops on SIGINT,
// and keeps its records in its data directory across a restart.
func TestBroker(t *testing.T) {
	dir := t.TempDir()
	for round := range 2 {
		out := newSyncBuffer()
		done := make(chan int, 1)
		go func() { done <- run([]string{"broker", "-port", "0", "-data-dir", dir}, out, out) }()
		addr := waitFor(t, out, "broker listening on ")
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("t"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.AllowAutoTopicCreation())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if round == 0 {
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte("kept")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		var got []string
		for len(got) < 1 && ctx.Err() == nil {
			for _, r := range cl.PollFetches(ctx).Records() {
				got = append(got, string(r.Value))
			}
		}
		cancel()
		cl.Close()
		if len(got) != 1 || got[0] != "kept" {
			t.Fatalf("round %d: consumed %q, want [kept]", round, got)
		}
		if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		select {
		case code := <-done:
			if code != exitOK || !strings.HasSuffix(out.String(), "broker stopped\n") {
				t.Fatalf("round %d: broker exited %d, output %q", round, code, out.String())
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("round %d: broker did not stop on SIGINT", round)
		}
	}
}

// waitFor waits for a line of out starting with prefix and returns the
// rest of it.
func waitFor(t *testing.T, out *syncBuffer, prefix string) string {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		for _, l := range strings.Split(out.String(), "\n") {
			if rest, ok := strings.CutPrefix(l, prefix); ok {
				return rest
			}
		}
		select {
		case <-out.changed:
		case <-deadline:
			t.Fatalf("no line %q in %q", prefix, out.String())
		}
	}
}
