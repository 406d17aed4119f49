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
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kadm"
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
// around the page's fetch, each node's records in between two
// Metrics().Nodes taken the same way, a worker utilization, and one lag row
// per input partition; once the input stops, exactly the records processed
// and a lag of 0 everywhere. Then a second instance joins and the first's
// page lists both members with exactly the tasks DescribeApplication gives.
// A screenshot is kept at ${TMPDIR:-/tmp}/streamwork-dashboard.png.
func TestDashboardInChromium(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("this test drives %s (apt-get install chromium; integration/run installs it): %v", chromiumPath, err)
	}
	b := kafkatest.Require(t)
	// Three phases of input and a second instance: more than testTimeout.
	ctx, cancel := context.WithTimeout(context.Background(), 2*testTimeout)
	defer cancel()
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
	appID := kafkatest.UniqueName(t, "dash")
	app := startApp(t, b, "dash", topo,
		kstream.ApplicationID(appID), kstream.InstanceID("dash-a"),
		kstream.StateDir(t.TempDir()),
		kstream.CommitInterval(200*time.Millisecond))

	mux := http.NewServeMux()
	mux.Handle("/dashboard/", http.StripPrefix("/dashboard", app.Dashboard()))
	srv := httptest.NewServer(mux) // 127.0.0.1
	defer srv.Close()

	// Input flows from startProducing until the function it returns, which
	// returns how many records were written: batches of 50 records every
	// 20ms.
	cl := producer(t, b)
	startProducing := func() (stop func() int) {
		var produced int
		quit, stopped := make(chan struct{}), make(chan error, 1)
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
				case <-quit:
					stopped <- nil
					return
				case <-tick.C:
				}
			}
		}()
		var once sync.Once
		stop = func() int {
			once.Do(func() {
				close(quit)
				if err := <-stopped; err != nil {
					t.Errorf("producer: %v", err)
				}
			})
			return produced
		}
		t.Cleanup(func() { stop() })
		return stop
	}
	stopProducing := startProducing()

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

	// Node numbers the same way: each node's records in on the page lies
	// between Metrics().Nodes taken before and after its fetch, and the
	// worker utilization card shows a number.
	nodesBefore := nodeRecordsIn(app.Metrics())
	s0 = seq()
	type shownNodes struct {
		Seq           int
		In            map[string]string
		Util, UtilSub string
	}
	var nodes shownNodes
	waitPage("two renders with node numbers", func() bool {
		nodes = evalJS[shownNodes](t, browser, `({Seq: Number(document.body.dataset.seq),
			In: Object.fromEntries(Array.from(document.querySelectorAll("#graph [data-node]")).map(e => [e.dataset.node, e.dataset.nodeIn || ""])),
			Util: document.querySelector("[data-metric='utilization']").dataset.value,
			UtilSub: document.querySelector("[data-metric='utilization']").parentElement.querySelector(".sub").textContent})`)
		return nodes.Seq >= s0+2
	})
	nodesAfter := nodeRecordsIn(app.Metrics())
	grew := 0
	for _, name := range want {
		shown, err := strconv.ParseInt(nodes.In[name], 10, 64)
		if err != nil || shown < nodesBefore[name] || shown > nodesAfter[name] {
			t.Fatalf("node %s: page shows %q records in, want within [%d, %d]", name, nodes.In[name], nodesBefore[name], nodesAfter[name])
		}
		if nodesAfter[name] > nodesBefore[name] {
			grew++
		}
	}
	if grew != len(want) {
		t.Fatalf("records in grew on %d of %d nodes while input flowed: before %v, after %v", grew, len(want), nodesBefore, nodesAfter)
	}
	util, err := strconv.ParseFloat(nodes.Util, 64)
	if err != nil || util <= 0 || util > 1 || !strings.HasPrefix(nodes.UtilSub, "headroom ") {
		t.Fatalf("utilization card: value %q, %q; want a utilization in (0, 1] and its headroom", nodes.Util, nodes.UtilSub)
	}
	t.Logf("page showed records in per node %v (Metrics().Nodes before %v, after %v), utilization %s (%s)", nodes.In, nodesBefore, nodesAfter, nodes.Util, nodes.UtilSub)

	// Input stops: the page ends on the exact totals, every lag 0.
	produced := stopProducing()
	// Every record through both sub-topologies: the input's source and the
	// repartition topic's source each took exactly the records produced.
	waitPage("the App to process everything", func() bool {
		m := app.Metrics()
		in := nodeRecordsIn(m)
		return in["KSTREAM-SOURCE-0000000000"] == int64(produced) && in["clicks-per-page-repartition-source"] == int64(produced) &&
			lagTotal(m) == 0 && len(lagKeys(m)) == 6
	})
	total := app.Metrics().RecordsProcessed
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
	t.Logf("page shows %d records processed (%d produced, each through two sub-topologies) and lag 0 on %d partitions", total, produced, len(rows))

	// A second instance joins while input flows again: the page of the
	// first lists every member of the group, the second's tasks included,
	// exactly as DescribeApplication returns them.
	stopProducing = startProducing()
	appB := startApp(t, b, "dash-b", topo,
		kstream.ApplicationID(appID), kstream.InstanceID("dash-b"),
		kstream.StateDir(t.TempDir()),
		kstream.CommitInterval(200*time.Millisecond))
	adm := kadm.NewClient(b.Client(t, kgo.MetadataMinAge(checkEvery)))
	describe := func() []string {
		d, err := kstream.DescribeApplication(ctx, adm, appID, kstream.WithTopology(topo.Describe()))
		if err != nil || d.State != "Stable" {
			return nil
		}
		var ms []string
		for _, m := range d.Members {
			var ids []string
			for _, id := range m.Tasks {
				ids = append(ids, id.String())
			}
			ms = append(ms, fmt.Sprintf("%s/%d: %s", m.InstanceID, m.Worker, strings.Join(ids, " ")))
		}
		return ms
	}
	var members []string
	waitFor(ctx, t, "both instances in the group, each with tasks", func() bool {
		members = describe()
		return len(members) == 2 && strings.HasPrefix(members[0], "dash-a/0: ") && strings.HasPrefix(members[1], "dash-b/0: ") &&
			!strings.HasSuffix(members[0], ": ") && !strings.HasSuffix(members[1], ": ")
	}, app, appB)
	var page []string
	waitPage("the page to list the group as DescribeApplication does", func() bool {
		page = evalJS[[]string](t, browser, `Array.from(document.querySelectorAll("[data-member-instance]")).map(e => e.dataset.memberInstance + "/" + e.dataset.memberWorker + ": " + e.dataset.memberTasks)`)
		members = describe()
		return len(members) == 2 && slices.Equal(page, members)
	})
	t.Logf("page of dash-a lists the group %q", page)

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

	stopProducing()
}

// nodeRecordsIn returns each node's records in from m.Nodes.
func nodeRecordsIn(m kstream.Metrics) map[string]int64 {
	out := make(map[string]int64, len(m.Nodes))
	for _, n := range m.Nodes {
		out[n.Name] = n.RecordsIn
	}
	return out
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
