package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
)

type testTopo struct {
	Subtopologies []struct{ ID int }
}

// counting returns a metrics source whose RecordsProcessed grows by 10 at
// each call, with lag on two partitions and one node.
func counting() (func() engine.Metrics, *atomic.Int64) {
	var calls atomic.Int64
	return func() engine.Metrics {
		n := calls.Add(1)
		return engine.Metrics{
			RecordsProcessed: 10 * n,
			Lag:              map[string]map[int32]int64{"in": {0: 3, 1: 4}},
			Nodes:            []engine.NodeMetrics{{Name: "KSTREAM-SOURCE-0000000000", RecordsIn: 7, Utilization: 0.25}},
			Tasks:            []engine.TaskID{{Subtopology: 0, Partition: 1}},
		}
	}, &calls
}

func get(t *testing.T, srv *httptest.Server, path string) (*http.Response, []byte) {
	t.Helper()
	c := srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Get(srv.URL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp, b
}

func getJSON(t *testing.T, srv *httptest.Server, path string, v any) {
	t.Helper()
	resp, b := get(t, srv, path)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s: %s %q", path, resp.Status, resp.Header.Get("Content-Type"))
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, b)
	}
}

// The handler mounted under a prefix serves the page, its assets and the
// JSON endpoints at relative paths, and redirects the bare prefix.
func TestHandlerEndpointsUnderPrefix(t *testing.T) {
	metrics, _ := counting()
	topo := testTopo{Subtopologies: []struct{ ID int }{{ID: 0}, {ID: 1}}}
	h := New(Source{Topology: topo, Metrics: metrics})
	defer h.Close()
	mux := http.NewServeMux()
	mux.Handle("/ops/dash/", http.StripPrefix("/ops/dash", h))
	mux.Handle("/ops/board", http.StripPrefix("/ops/board", h)) // the bare path reaches the handler
	srv := httptest.NewServer(mux)
	defer srv.Close()

	var gotTopo testTopo
	getJSON(t, srv, "/ops/dash/api/topology", &gotTopo)
	if !reflect.DeepEqual(gotTopo, topo) {
		t.Fatalf("api/topology = %+v, want %+v", gotTopo, topo)
	}
	var m engine.Metrics
	getJSON(t, srv, "/ops/dash/api/metrics", &m)
	if m.RecordsProcessed <= 0 || m.RecordsProcessed%10 != 0 || m.Lag["in"][1] != 4 || len(m.Nodes) != 1 || m.Nodes[0].Utilization != 0.25 ||
		m.Tasks[0] != (engine.TaskID{Subtopology: 0, Partition: 1}) || m.Time.IsZero() {
		t.Fatalf("api/metrics = %+v", m)
	}

	resp, body := get(t, srv, "/ops/dash/")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(string(body), `<script src="dashboard.js">`) || !strings.Contains(string(body), `href="dashboard.css"`) {
		t.Fatalf("page: %s %q\n%s", resp.Status, resp.Header.Get("Content-Type"), body)
	}
	for path, ctype := range map[string]string{"dashboard.js": "text/javascript", "dashboard.css": "text/css"} {
		resp, body := get(t, srv, "/ops/dash/"+path)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), ctype) || len(body) < 1000 {
			t.Fatalf("%s: %s %q, %d bytes", path, resp.Status, resp.Header.Get("Content-Type"), len(body))
		}
	}
	// No absolute path in the page or the script: it must work under any prefix.
	for _, path := range []string{"", "dashboard.js"} {
		_, body := get(t, srv, "/ops/dash/"+path)
		for _, abs := range []string{`"/api`, `'/api`, `src="/`, `href="/`, "http://", "https://"} {
			if strings.Contains(string(body), abs) && !(path == "dashboard.js" && abs == "http://" && strings.Count(string(body), "http://") == strings.Count(string(body), "http://www.w3.org/2000/svg")) {
				t.Errorf("%q holds %q", path, abs)
			}
		}
	}

	resp, _ = get(t, srv, "/ops/board?x=1")
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "board/" {
		t.Fatalf("GET /ops/board: %s, Location %q; want a redirect to board/", resp.Status, resp.Header.Get("Location"))
	}
	resp, _ = get(t, srv, "/ops/dash/api/nothing")
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown endpoint: %s", resp.Status)
	}
	post, err := srv.Client().Post(srv.URL+"/ops/dash/api/metrics", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	post.Body.Close()
	if post.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %s", post.Status)
	}
}

// api/group serves what Group returns, asks again only after GroupTTL,
// serves an error as a message beside no description, and is not found
// without Group.
func TestGroupEndpoint(t *testing.T) {
	metrics, _ := counting()
	type member struct{ InstanceID string }
	var calls atomic.Int64
	fail := errors.New("describe group: coordinator not available")
	var failing atomic.Bool
	h := New(Source{Metrics: metrics, GroupTTL: time.Hour, Group: func(ctx context.Context) (any, error) {
		calls.Add(1)
		if _, ok := ctx.Deadline(); !ok {
			return nil, errors.New("no deadline")
		}
		if failing.Load() {
			return nil, fail
		}
		return []member{{"a"}, {"b"}}, nil
	}})
	defer h.Close()
	srv := httptest.NewServer(h)
	defer srv.Close()
	type view struct {
		Time  time.Time
		Group []member
		Error string
	}
	for range 2 {
		var v view
		getJSON(t, srv, "/api/group", &v)
		if !reflect.DeepEqual(v.Group, []member{{"a"}, {"b"}}) || v.Error != "" || v.Time.IsZero() {
			t.Fatalf("api/group = %+v", v)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("Group called %d times within its TTL, want 1", n)
	}

	failing.Store(true)
	h2 := New(Source{Metrics: metrics, Group: h.src.Group})
	defer h2.Close()
	srv2 := httptest.NewServer(h2)
	defer srv2.Close()
	var v view
	getJSON(t, srv2, "/api/group", &v)
	if v.Group != nil || v.Error != fail.Error() {
		t.Fatalf("api/group of a failing Group = %+v, want the error %q", v, fail)
	}

	h3 := New(Source{Metrics: metrics})
	defer h3.Close()
	srv3 := httptest.NewServer(h3)
	defer srv3.Close()
	if resp, _ := get(t, srv3, "/api/group"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("api/group without Group: %s, want 404", resp.Status)
	}
}

// History starts with the first request while the App runs, samples at
// its interval, and stops when Done closes.
func TestHistoryLifetime(t *testing.T) {
	metrics, calls := counting()
	running, done := make(chan struct{}), make(chan struct{})
	h := New(Source{Topology: testTopo{}, Metrics: metrics, Running: running, Done: done, Interval: 5 * time.Millisecond})
	srv := httptest.NewServer(h)
	defer srv.Close()

	var hist History
	getJSON(t, srv, "/api/history", &hist)
	if hist.IntervalMillis != 5 || len(hist.Samples) != 0 {
		t.Fatalf("before Running: %+v", hist)
	}
	h.Wait() // never started: returns at once
	if n := calls.Load(); n != 0 {
		t.Fatalf("before Running, metrics were read %d times", n)
	}

	close(running)
	deadline := time.Now().Add(10 * time.Second)
	for len(hist.Samples) < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("history has %d samples after 10s", len(hist.Samples))
		}
		getJSON(t, srv, "/api/history", &hist)
	}
	for i, s := range hist.Samples {
		if s.Lag != 7 || s.Utilization != -1 || s.Processed <= 0 || s.Processed%10 != 0 {
			t.Fatalf("sample %d: %+v", i, s)
		}
		if i == 0 {
			if s.RecordsPerSecond != 0 {
				t.Fatalf("first sample has rate %v", s.RecordsPerSecond)
			}
			continue
		}
		prev := hist.Samples[i-1]
		if s.Processed <= prev.Processed || s.Time < prev.Time {
			t.Fatalf("samples %d, %d out of order: %+v %+v", i-1, i, prev, s)
		}
		if want := float64(s.Processed-prev.Processed) * 1000 / float64(s.Time-prev.Time); s.Time > prev.Time && s.RecordsPerSecond != want {
			t.Fatalf("sample %d rate %v, want %v", i, s.RecordsPerSecond, want)
		}
	}

	close(done)
	h.Wait()
	getJSON(t, srv, "/api/history", &hist)
	n := len(hist.Samples)
	before := calls.Load()
	getJSON(t, srv, "/api/history", &hist) // a request after Done starts nothing
	h.Wait()
	if len(hist.Samples) != n || calls.Load() != before {
		t.Fatalf("history moved after Done: %d samples then %d, metrics calls %d then %d", n, len(hist.Samples), before, calls.Load())
	}
	h.Close()
	h.Close() // idempotent
}

// Close stops a history whose Done never closes.
func TestCloseStopsHistory(t *testing.T) {
	metrics, calls := counting()
	h := New(Source{Topology: nil, Metrics: metrics, Interval: time.Millisecond})
	srv := httptest.NewServer(h)
	defer srv.Close()
	get(t, srv, "/api/history")
	h.Close()
	n := calls.Load()
	get(t, srv, "/api/history")
	h.Wait()
	if calls.Load() != n {
		t.Fatalf("metrics read after Close: %d then %d", n, calls.Load())
	}
}

func TestSampleOf(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_123)
	m := engine.Metrics{
		RecordsProcessed: 42, Paused: 2,
		Lag:        map[string]map[int32]int64{"a": {0: 100}},
		Partitions: []engine.PartitionMetrics{{Topic: "a", Partition: 0, Lag: 5}, {Topic: "a", Partition: 1, Lag: -1}, {Topic: "b", Lag: 6}},
		Workers:    []engine.WorkerMetrics{{Utilization: 0.5}, {Utilization: 1}},
	}
	want := Sample{Time: 1_700_000_000_123, Processed: 42, Lag: 11, Paused: 2, Utilization: 0.75}
	if got := SampleOf(m, now); got != want {
		t.Fatalf("SampleOf = %+v, want %+v", got, want)
	}
	m.Partitions, m.Workers = nil, nil
	want.Lag, want.Utilization = 100, -1
	if got := SampleOf(m, now); got != want {
		t.Fatalf("SampleOf without sections = %+v, want %+v", got, want)
	}
}

func TestRingKeepsTheLastSamples(t *testing.T) {
	var r ring
	for i := range HistoryLen + 7 {
		r.add(Sample{Time: int64(i) * 1000, Processed: int64(i) * 3})
	}
	all := r.all()
	if len(all) != HistoryLen {
		t.Fatalf("%d samples, want %d", len(all), HistoryLen)
	}
	for i, s := range all {
		if want := int64(i + 7); s.Time != want*1000 || s.Processed != want*3 || s.RecordsPerSecond != 3 {
			t.Fatalf("sample %d = %+v, want time %d, rate 3", i, s, want*1000)
		}
	}
}

func BenchmarkMetricsEndpoint(b *testing.B) {
	metrics, _ := counting()
	h := New(Source{Topology: testTopo{}, Metrics: metrics})
	req := httptest.NewRequest(http.MethodGet, "/api/metrics", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
	}
}
