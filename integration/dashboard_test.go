package integration

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/integration/kafkatest"
	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
)

// chromiumPath is Debian's Chromium, which integration/run installs.
const chromiumPath = "/usr/bin/chromium"

// The dashboard in a real browser: an App on the real broker with input
// flowing, its dashboard served on loopback and read by headless Chromium.
// The page must show the topology's nodes under exactly their Describe
// names, a records-processed total between two App.Metrics snapshots taken
// around the page's fetch, and one lag row per input partition; once the
// input stops, exactly the records processed and a lag of 0 everywhere. A
// screenshot is kept at ${TMPDIR:-/tmp}/streamwork-dashboard.png.
func TestDashboardInChromium(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("this test drives %s (apt-get install chromium; integration/run installs it): %v", chromiumPath, err)
	}
	b := kafkatest.Require(t)
	ctx := testContext(t)
	in := newTopic(t, b, "dash-in", 3)
	out := newTopic(t, b, "dash-out", 3)

	// Two sub-topologies (a re-key through a repartition topic), a store.
	bld := kstream.NewBuilder()
	clicks := kstream.From(bld, in, serde.String, serde.String)
	kstream.MapValues(clicks, func(v string) string { return "page:" + v }).To(out, serde.String, serde.String)
	kstream.Count(kstream.GroupBy(clicks, func(_, page string) string { return page }, serde.String, serde.String),
		kstream.StoreName("clicks-per-page"))
	topo, err := bld.Build()
	if err != nil {
		t.Fatal(err)
	}
	app := startApp(t, b, "dash", topo,
		kstream.ApplicationID(kafkatest.UniqueName(t, "dash")),
		kstream.StateDir(t.TempDir()),
		kstream.CommitInterval(200*time.Millisecond))

	mux := http.NewServeMux()
	mux.Handle("/dashboard/", http.StripPrefix("/dashboard", app.Dashboard()))
	srv := httptest.NewServer(mux) // 127.0.0.1
	defer srv.Close()

	// Input flows until stopProducing: batches of 50 records every 20ms.
	cl := producer(t, b)
	var produced int
	stop, stopped := make(chan struct{}), make(chan error, 1)
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		pages := []string{"home", "cart", "search", "item", "checkout"}
		for i := 0; ; {
			recs := make([]*kgo.Record, 50)
			ts := time.Now().Add(-2 * time.Hour)
			for j := range recs {
				p := pages[i%len(pages)]
				recs[j] = &kgo.Record{Topic: in, Partition: int32(i % 3), Key: []byte("user" + strconv.Itoa(i%17)), Value: []byte(p), Timestamp: ts}
				i++
			}
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				stopped <- err
				return
			}
			produced += len(recs)
			select {
			case <-stop:
				stopped <- nil
				return
			case <-tick.C:
			}
		}
	}()
	var stopOnce sync.Once
	stopProducing := func() {
		stopOnce.Do(func() {
			close(stop)
			if err := <-stopped; err != nil {
				t.Errorf("producer: %v", err)
			}
		})
	}
	defer stopProducing()

	browser := newBrowser(ctx, t)
	if err := chromedp.Do(browser, chromedp.Navigate(srv.URL+"/dashboard/")); err != nil {
		t.Fatalf("open the dashboard: %v", err)
	}
	seq := func() int { return evalJS[int](t, browser, `Number(document.body.dataset.seq)`) }
	waitPage := func(what string, cond func() bool) {
		t.Helper()
		waitFor(ctx, t, what, cond, app)
	}

	// The graph: every node, under exactly its Describe name.
	var want []string
	for _, st := range topo.Describe().Subtopologies {
		for _, n := range st.Nodes {
			want = append(want, n.Name)
		}
	}
	slices.Sort(want)
	var shown []string
	waitPage("the topology graph", func() bool {
		shown = evalJS[[]string](t, browser, `Array.from(document.querySelectorAll("#graph [data-node]")).map(e => e.dataset.node).sort()`)
		return len(shown) > 0
	})
	if !slices.Equal(shown, want) {
		t.Fatalf("graph nodes %q, want %q", shown, want)
	}
	stores := evalJS[[]string](t, browser, `Array.from(document.querySelectorAll("#graph [data-store]")).map(e => e.dataset.store)`)
	if !slices.Contains(stores, "clicks-per-page") {
		t.Fatalf("graph stores %q, want clicks-per-page among them", stores)
	}

	// Live numbers while input flows: the total the page shows comes from
	// a fetch that started after `before` was taken (two renders after a
	// render seen after it) and ended before `after`.
	waitPage("records processed", func() bool { return app.Metrics().RecordsProcessed > 500 })
	before := app.Metrics().RecordsProcessed
	s0 := seq()
	type shownTotal struct {
		Seq       int
		Processed string
	}
	var got shownTotal
	waitPage("two renders", func() bool {
		got = evalJS[shownTotal](t, browser, `({Seq: Number(document.body.dataset.seq), Processed: document.querySelector("[data-metric='records-processed']").dataset.value})`)
		return got.Seq >= s0+2
	})
	after := app.Metrics().RecordsProcessed
	shownProcessed, err := strconv.ParseInt(got.Processed, 10, 64)
	if err != nil || shownProcessed < before || shownProcessed > after || before == after {
		t.Fatalf("page shows %q records processed, want within [%d, %d] (and input flowing)", got.Processed, before, after)
	}
	t.Logf("page showed %d records processed, App.Metrics %d before and %d after", shownProcessed, before, after)

	// Charts fill in from the server's history; keep the picture.
	waitPage("five samples in the lag chart", func() bool {
		return evalJS[int](t, browser, `Number((document.querySelector("#chart-lag svg") || {dataset: {}}).dataset.points || 0)`) >= 5
	})
	png, err := chromedp.Run(browser, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	shot := filepath.Join(os.TempDir(), "streamwork-dashboard.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("dashboard screenshot (%d bytes): %s", len(png), shot)

	// Input stops: the page ends on the exact totals, every lag 0.
	stopProducing()
	total := int64(2 * produced) // each record once from the input, once from the repartition topic
	waitPage("the App to process everything", func() bool {
		m := app.Metrics()
		return m.RecordsProcessed == total && lagTotal(m) == 0 && len(lagKeys(m)) == 6
	})
	wantRows := lagKeys(app.Metrics())
	type row struct{ Topic, Partition, Lag string }
	var rows []row
	waitPage("the page to show the final numbers", func() bool {
		got.Processed = evalJS[string](t, browser, `document.querySelector("[data-metric='records-processed']").dataset.value`)
		rows = evalJS[[]row](t, browser, `Array.from(document.querySelectorAll("[data-lag-topic]")).map(e => ({Topic: e.dataset.lagTopic, Partition: e.dataset.lagPartition, Lag: e.dataset.lag}))`)
		if got.Processed != strconv.FormatInt(total, 10) || len(rows) != len(wantRows) {
			return false
		}
		for _, r := range rows {
			if r.Lag != "0" {
				return false
			}
		}
		return true
	})
	var gotRows []string
	for _, r := range rows {
		gotRows = append(gotRows, r.Topic+"/"+r.Partition)
	}
	slices.Sort(gotRows)
	if !slices.Equal(gotRows, wantRows) {
		t.Fatalf("lag rows %q, want %q", gotRows, wantRows)
	}
	t.Logf("page shows %d records processed (%d produced, through two sub-topologies) and lag 0 on %d partitions", total, produced, len(rows))
}

// lagTotal sums the lag of every input partition of m.
func lagTotal(m kstream.Metrics) int64 {
	var n int64
	for _, ps := range m.Lag {
		for _, l := range ps {
			n += l
		}
	}
	return n
}

// lagKeys returns "topic/partition" for each partition in m.Lag, sorted.
func lagKeys(m kstream.Metrics) []string {
	var keys []string
	for _, tp := range slices.Sorted(maps.Keys(m.Lag)) {
		for p := range m.Lag[tp] {
			keys = append(keys, fmt.Sprintf("%s/%d", tp, p))
		}
	}
	slices.Sort(keys)
	return keys
}

// evalJS evaluates expr in the page and decodes its value.
func evalJS[T any](t *testing.T, browser context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(browser, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// newBrowser starts headless Chromium with a fresh profile; it ends with t.
func newBrowser(ctx context.Context, t *testing.T) context.Context {
	t.Helper()
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
	)
	browser, cancelBrowser := chromedp.NewContext(alloc, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	if err := chromedp.Do(browser); err != nil { // starts the browser
		t.Fatalf("start %s: %v", chromiumPath, err)
	}
	return browser
}
