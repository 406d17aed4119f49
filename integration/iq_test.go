package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/streamwork-go/streamwork/integration/kafkatest"
	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
)

// iqApp is a running App whose QueryHandler is served at its QueryAddr on
// the loopback interface.
type iqApp struct {
	*runningApp
	addr string
	srv  *http.Server
}

// startIQApp starts an App serving queries of its store "counts".
func startIQApp(t *testing.T, b *kafkatest.Broker, name string, topo *kstream.Topology, opts ...kstream.Opt) *iqApp {
	t.Helper()
	return startQueryApp(t, b, name, topo, "counts", opts...)
}

// startQueryApp starts an App whose query handler serves store (string
// keys, int64 values) on a local port, its QueryAddr.
func startQueryApp(t *testing.T, b *kafkatest.Broker, name string, topo *kstream.Topology, store string, opts ...kstream.Opt) *iqApp {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	a := startApp(t, b, name, topo, append(opts, kstream.QueryAddr(addr))...)
	h, err := a.QueryHandler(kstream.Queryable(store, serde.String, serde.Int64))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	return &iqApp{runningApp: a, addr: addr, srv: srv}
}

// iqAnswer is what a query answered: the status and the JSON body.
type iqAnswer struct {
	status int
	retry  string // Retry-After
	body   map[string]json.RawMessage
	raw    string
}

func iqQuery(ctx context.Context, addr, path string) (iqAnswer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return iqAnswer{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return iqAnswer{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return iqAnswer{}, err
	}
	ans := iqAnswer{status: resp.StatusCode, retry: resp.Header.Get("Retry-After"), raw: string(raw)}
	if err := json.Unmarshal(raw, &ans.body); err != nil {
		return ans, fmt.Errorf("GET %s: %d %q: %v", path, resp.StatusCode, raw, err)
	}
	return ans, nil
}

// checkGet checks a key's answer: the exact count, or a retryable 503.
// It reports whether it was an answer (not a 503).
func checkGet(ans iqAnswer, key string, want int64) (bool, error) {
	switch ans.status {
	case http.StatusOK:
		if string(ans.body["found"]) != "true" || string(ans.body["value"]) != fmt.Sprint(want) {
			return true, fmt.Errorf("key %s: wrong answer %s, want %d", key, ans.raw, want)
		}
		return true, nil
	case http.StatusServiceUnavailable:
		if string(ans.body["retryable"]) != "true" || ans.retry == "" {
			return false, fmt.Errorf("key %s: 503 without retry signals: %s", key, ans.raw)
		}
		return false, nil
	}
	return false, fmt.Errorf("key %s: status %d: %s", key, ans.status, ans.raw)
}

// checkAll checks a scan's answer: exactly want, or a retryable 503.
func checkAll(ans iqAnswer, want map[string]int64) (bool, error) {
	if ans.status == http.StatusServiceUnavailable {
		return false, nil
	}
	var entries []struct {
		Key   string
		Value int64
	}
	if ans.status != http.StatusOK || json.Unmarshal(ans.body["entries"], &entries) != nil {
		return true, fmt.Errorf("all: status %d: %s", ans.status, ans.raw)
	}
	got := map[string]int64{}
	for _, e := range entries {
		got[e.Key] = e.Value
	}
	if len(entries) != len(want) || !maps.Equal(got, want) {
		return true, fmt.Errorf("all: %d entries %v, want %v", len(entries), got, want)
	}
	return true, nil
}

// Three instances with query addresses on the loopback, a changelogged
// count over a known input: every key asked at every instance answers its
// exact count (forwarded to the owner where it is not local), a scan at
// any instance returns the exact full set, and while an instance joins and
// another leaves, every answer of queries running in a loop is the exact
// value or a retryable 503, never a wrong value.
func TestInteractiveQueriesAcrossInstances(t *testing.T) {
	b := kafkatest.Require(t)
	ctx := testContext(t)
	const parts = 6
	in := newTopic(t, b, "iq-in", parts)
	out := newTopic(t, b, "iq-out", parts)
	appID := kafkatest.UniqueName(t, "iq-app")
	deleteTopicsAtEnd(t, b, appID+"-counts-changelog")
	topo := stateTopology(t, in, out)
	want := map[string]int64{}
	produce(ctx, t, producer(t, b), keyedBatch(in, parts, 0, 900, 60, want))
	opts := func(id string) []kstream.Opt {
		return []kstream.Opt{kstream.ApplicationID(appID), kstream.InstanceID(id), kstream.StateDir(t.TempDir())}
	}
	apps := []*iqApp{startIQApp(t, b, "a", topo, opts("a")...), startIQApp(t, b, "b", topo, opts("b")...), startIQApp(t, b, "c", topo, opts("c")...)}
	running := []*runningApp{apps[0].runningApp, apps[1].runningApp, apps[2].runningApp}
	waitAssigned(ctx, t, parts, running...)
	waitFor(ctx, t, "900 records processed and every instance knowing the hosts", func() bool {
		var n int64
		for _, a := range apps {
			if hosts, err := a.StoreHosts("counts"); err != nil || len(hosts) != 3 {
				return false
			}
			n += a.Metrics().RecordsProcessed
		}
		return n == 900
	}, running...)

	forwarded := 0
	for k, n := range want {
		md, err := kstream.QueryMetadataForKey(apps[0].App, "counts", k, serde.String)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range apps {
			ans, err := iqQuery(ctx, a.addr, "/stores/counts/keys/"+k)
			if err != nil {
				t.Fatal(err)
			}
			if ans.status != http.StatusOK {
				t.Fatalf("key %s at %s: %d %s", k, a.name, ans.status, ans.raw)
			}
			if _, err := checkGet(ans, k, n); err != nil {
				t.Fatalf("at %s: %v", a.name, err)
			}
			if string(ans.body["host"]) != fmt.Sprintf("%q", md.Active) {
				t.Fatalf("key %s at %s answered by %s, its active host is %s", k, a.name, ans.body["host"], md.Active)
			}
			if md.Active != a.addr {
				forwarded++
			}
		}
	}
	if forwarded != 2*len(want) {
		t.Fatalf("%d answers were forwarded, want %d (two of three instances per key)", forwarded, 2*len(want))
	}
	for _, a := range apps {
		ans, err := iqQuery(ctx, a.addr, "/stores/counts/all")
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := checkAll(ans, want); !ok || err != nil {
			t.Fatalf("all at %s: %d, %v", a.name, ans.status, err)
		}
	}

	// Queries in a loop at a and b while d joins and then c leaves.
	var (
		answered, retried atomic.Int64
		qwg               sync.WaitGroup
		errMu             sync.Mutex
		firstErr          error
	)
	qctx, qcancel := context.WithCancel(ctx)
	keys := sortedKeys(want)
	for _, a := range apps[:2] {
		qwg.Go(func() {
			for i := 0; qctx.Err() == nil; i++ {
				var ok bool
				var err error
				if i%10 == 9 {
					var ans iqAnswer
					if ans, err = iqQuery(qctx, a.addr, "/stores/counts/all"); err == nil {
						ok, err = checkAll(ans, want)
					}
				} else {
					k := keys[i%len(keys)]
					var ans iqAnswer
					if ans, err = iqQuery(qctx, a.addr, "/stores/counts/keys/"+k); err == nil {
						ok, err = checkGet(ans, k, want[k])
					}
				}
				if qctx.Err() != nil {
					return
				}
				if err != nil {
					errMu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("at %s: %w", a.name, err)
					}
					errMu.Unlock()
					return
				}
				if ok {
					answered.Add(1)
				} else {
					retried.Add(1)
				}
			}
		})
	}
	d := startIQApp(t, b, "d", topo, opts("d")...)
	waitAssigned(ctx, t, parts, append(running, d.runningApp)...)
	if err := apps[2].stop(t); err != nil {
		t.Fatalf("c: Run returned %v", err)
	}
	running = []*runningApp{apps[0].runningApp, apps[1].runningApp, d.runningApp}
	waitAssigned(ctx, t, parts, running...)
	start := answered.Load()
	waitFor(ctx, t, "more answers after the rebalances", func() bool { return answered.Load() > start+50 }, running...)
	qcancel()
	qwg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	t.Logf("during the rebalances: %d exact answers, %d retryable 503s", answered.Load(), retried.Load())

	// After: every key at every instance, and the full scan, exact again.
	for _, a := range []*iqApp{apps[0], apps[1], d} {
		waitFor(ctx, t, "hosts known at "+a.name, func() bool {
			hosts, err := a.StoreHosts("counts")
			return err == nil && len(hosts) == 3
		}, running...)
		// A 503 is retried (the last follow-up assignment may still be
		// on its way); a wrong answer fails at once.
		for k, n := range want {
			waitFor(ctx, t, "key "+k+" at "+a.name, func() bool {
				ans, err := iqQuery(ctx, a.addr, "/stores/counts/keys/"+k)
				ok := false
				if err == nil {
					ok, err = checkGet(ans, k, n)
				}
				if err != nil {
					t.Fatalf("after the rebalances, at %s: %v", a.name, err)
				}
				return ok
			}, running...)
		}
		waitFor(ctx, t, "the full scan at "+a.name, func() bool {
			ans, err := iqQuery(ctx, a.addr, "/stores/counts/all")
			ok := false
			if err == nil {
				ok, err = checkAll(ans, want)
			}
			if err != nil {
				t.Fatalf("after the rebalances, at %s: %v", a.name, err)
			}
			return ok
		}, running...)
	}
}
