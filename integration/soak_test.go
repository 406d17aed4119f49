package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/integration/kafkatest"
	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
)

const (
	// soakEnv names the environment variable that sets how long the soak
	// test feeds its App (a Go duration: 30m, 2h); 60s when unset.
	soakEnv = "STREAMWORK_SOAK"
	// soakOutEnv names the environment variable naming a directory where
	// the soak test writes its samples (soak.csv) and a chart of them
	// (soak.png).
	soakOutEnv = "STREAMWORK_SOAK_OUT"
	// soakRate is the input rate, records per second.
	soakRate = 200
	// soakKeys is the number of keys of the input and of the table.
	soakKeys = 50
	// soakLagSeconds bounds the total lag: at most this many seconds of
	// input may wait (commit interval, a transaction's round trips and the
	// shared machine's scheduling).
	soakLagSeconds = 10
	// soakGoroutineSlack is how far the goroutine count may move between
	// the first and the last quarter after warm-up: the Kafka clients start
	// short-lived goroutines per request and per connection, and timers
	// fire, so a sample is exact only within a few.
	soakGoroutineSlack = 10
	// soakMemTable and soakBlockCache are the App's Pebble memory budgets,
	// small so that they fill within the warm-up: a memtable's pages are
	// touched as it fills (at this rate a default 4 MiB memtable of each of
	// the nine stores takes longer than a short soak to fill), and the
	// assertions after warm-up are to see leaks, not budgets filling.
	soakMemTable   = 256 << 10
	soakBlockCache = 16 << 20
	// soakMemGrowth bounds the growth of memory (mean of the last quarter
	// over the mean of the first quarter after warm-up).
	soakMemGrowth = 0.10
	// soakHeapSlack is how far the heap's floor may move beyond
	// soakMemGrowth: the floor of a quarter is its smallest sample, and in
	// a short run a quarter spans few GC cycles, so its smallest sample may
	// still hold a cycle's garbage (the test process also hosts the other
	// tests of the package, whose clients may still be winding down).
	soakHeapSlack = 1 << 20
)

// soakSample is one sample of the soak test's process (which hosts the
// App, the producer and the sampler).
type soakSample struct {
	at         time.Duration // since the App started
	rssKB      int64         // VmRSS of /proc/self/status
	heapInuse  uint64        // runtime.MemStats.HeapInuse
	goroutines int
	lag        int64 // the sum of Metrics().Lag over the input partitions
	processed  int64 // Metrics().RecordsProcessed
	produced   int64 // input records the producer wrote so far
}

// Soak: a steady input rate through a stream-table join and a tumbling
// windowed count (EmitFinal), exactly-once, Pebble stores, for
// STREAMWORK_SOAK (60s by default). Every second the test samples the
// process's RSS and heap in use, its goroutines and the App's total lag.
// After a warm-up (a quarter of the run, at most five minutes), memory is
// flat (RSS: the mean of the last quarter of the samples at most 10% above
// the mean of the first; heap in use: the smallest sample of the last
// quarter at most 10% and soakHeapSlack above that of the first), goroutines
// are flat (within soakGoroutineSlack) and
// the lag stays below soakLagSeconds of input. At the end every input
// record is joined exactly once and every closed window is emitted once with
// its exact count.
func TestSoak(t *testing.T) {
	b := kafkatest.Require(t)
	length := time.Minute
	if v := os.Getenv(soakEnv); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 20*time.Second {
			t.Fatalf("%s=%q: want a duration of at least 20s", soakEnv, v)
		}
		length = d
	}
	warm := min(length/4, 5*time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), length+10*time.Minute)
	t.Cleanup(cancel)

	const parts = 3
	events := newTopic(t, b, "soak-events", parts)
	prices := newTopic(t, b, "soak-prices", parts)
	joined := newTopic(t, b, "soak-joined", parts)
	windows := newTopic(t, b, "soak-windows", parts)
	appID := kafkatest.UniqueName(t, "soak")
	deleteTopicsAtEnd(t, b, appID+"-soak-counts-changelog", appID+"-soak-counts-emit-changelog",
		appID+"-soak-prices-changelog")

	const size, grace = 10 * time.Second, 2 * time.Second
	bld := kstream.NewBuilder()
	ev := kstream.From(bld, events, serde.String, serde.Int64)
	tbl := kstream.TableFrom(bld, prices, serde.String, serde.Int64, kstream.StoreName("soak-prices"))
	kstream.JoinTable(ev, tbl, func(_ string, seq, price int64) string { return fmt.Sprintf("%d/%d", seq, price) },
		kstream.StreamJoined[string, int64, int64]{Key: serde.String, Left: serde.Int64, Right: serde.Int64}).
		To(joined, serde.String, serde.String)
	w := kstream.WindowedBy(kstream.GroupByKey(ev, serde.String, serde.Int64), kstream.Tumbling(size, grace))
	kstream.WindowedCount(w, kstream.EmitFinal(), kstream.StoreName("soak-counts")).
		ToStream().To(windows, kstream.TimeWindowedSerde(serde.String, size), serde.Int64)
	topo, err := bld.Build()
	if err != nil {
		t.Fatal(err)
	}

	// Every key has a price before the first event, so every event joins:
	// the prices are a minute older than the first event and the App has
	// processed them before the producer starts (a 30-minute run lost the
	// join of one event whose price record had the same timestamp: which of
	// two records of equal time a task takes first is not defined). Keys
	// go to partition index%parts in both topics (co-partitioned).
	prod := producer(t, b)
	key := func(k int) string { return fmt.Sprintf("k%02d", k) }
	base := time.Now().Add(-2 * time.Hour).Truncate(time.Minute).UnixMilli()
	var seed []*kgo.Record
	for k := range soakKeys {
		v, _ := serde.Int64.Serialize(prices, 1)
		seed = append(seed, &kgo.Record{Topic: prices, Partition: int32(k % parts), Key: []byte(key(k)), Value: v, Timestamp: time.UnixMilli(base - time.Minute.Milliseconds())})
	}
	produce(ctx, t, prod, seed)

	app := startApp(t, b, "soak", topo, kstream.ApplicationID(appID), kstream.StateDir(t.TempDir()),
		kstream.Guarantee(kstream.ExactlyOnce), kstream.CommitInterval(200*time.Millisecond),
		kstream.MemTableSize(soakMemTable), kstream.BlockCacheSize(soakBlockCache))
	waitAssigned(ctx, t, parts, app)
	waitFor(ctx, t, "the prices processed", func() bool { return app.Metrics().RecordsProcessed >= soakKeys }, app)
	started := time.Now()

	// The producer writes soakRate events a second in batches of a tenth
	// of a second, event i at base + i*1000/soakRate ms (event time runs
	// with the clock, two hours back), and a price update of one key every
	// second. It is owned by the test: stopped by closing stopProd, waited
	// on prodDone.
	type prodResult struct {
		n, priceUpdates int64
		err             error
	}
	stopProd := make(chan struct{})
	prodDone := make(chan prodResult, 1)
	produced := make(chan int64, 1) // the latest count, for the sampler
	produced <- 0
	go func() {
		var res prodResult
		defer func() { prodDone <- res }()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for step := int64(1); ; step++ {
			select {
			case <-stopProd:
				return
			case <-ctx.Done():
				res.err = ctx.Err()
				return
			case <-tick.C:
			}
			var recs []*kgo.Record
			for ; res.n < step*soakRate/10; res.n++ {
				k := int(res.n % soakKeys)
				v, _ := serde.Int64.Serialize(events, res.n)
				recs = append(recs, &kgo.Record{Topic: events, Partition: int32(k % parts), Key: []byte(key(k)), Value: v,
					Timestamp: time.UnixMilli(base + res.n*1000/soakRate)})
			}
			if step%10 == 0 {
				k := int(step/10) % soakKeys
				res.priceUpdates++
				v, _ := serde.Int64.Serialize(prices, 1+step/10)
				recs = append(recs, &kgo.Record{Topic: prices, Partition: int32(k % parts), Key: []byte(key(k)), Value: v,
					Timestamp: time.UnixMilli(base + res.n*1000/soakRate)})
			}
			if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				res.err = err
				return
			}
			<-produced
			produced <- res.n
		}
	}()
	prodStopped := false
	stopProducer := func() prodResult {
		prodStopped = true
		close(stopProd)
		return <-prodDone
	}
	t.Cleanup(func() {
		if !prodStopped {
			stopProducer()
		}
	})

	var samples []soakSample
	tick := time.NewTicker(time.Second)
	for time.Since(started) < length {
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-tick.C:
		}
		if err, stopped := app.exited(); stopped {
			t.Fatalf("App stopped during the soak: %v", err)
		}
		s := sampleSoak(t, app)
		s.at = time.Since(started)
		n := <-produced
		produced <- n
		s.produced = n
		samples = append(samples, s)
		if len(samples)%60 == 0 {
			t.Logf("soak %v: rss %d MiB, heap in use %d MiB, %d goroutines, lag %d, processed %d of %d",
				s.at.Round(time.Second), s.rssKB>>10, s.heapInuse>>20, s.goroutines, s.lag, s.processed, s.produced)
		}
	}
	tick.Stop()
	res := stopProducer()
	if res.err != nil {
		t.Fatalf("producer: %v", res.err)
	}
	if dir := os.Getenv(soakOutEnv); dir != "" {
		writeSoak(t, dir, samples)
	}

	// The figures after warm-up.
	var after []soakSample
	for _, s := range samples {
		if s.at >= warm {
			after = append(after, s)
		}
	}
	if len(after) < 8 {
		t.Fatalf("%d samples after the warm-up of %v, want 8 or more", len(after), warm)
	}
	q := len(after) / 4
	firstQ, lastQ := after[:q], after[len(after)-q:]
	mean := func(ss []soakSample, f func(soakSample) float64) float64 {
		sum := 0.0
		for _, s := range ss {
			sum += f(s)
		}
		return sum / float64(len(ss))
	}
	rss := func(s soakSample) float64 { return float64(s.rssKB) * 1024 }
	heap := func(s soakSample) float64 { return float64(s.heapInuse) }
	rss1, rss4 := mean(firstQ, rss), mean(lastQ, rss)
	heap1, heap4 := mean(firstQ, heap), mean(lastQ, heap)
	gmin := func(ss []soakSample) (lo, hi int) {
		lo, hi = ss[0].goroutines, ss[0].goroutines
		for _, s := range ss {
			lo, hi = min(lo, s.goroutines), max(hi, s.goroutines)
		}
		return lo, hi
	}
	g1lo, g1hi := gmin(firstQ)
	g4lo, g4hi := gmin(lastQ)
	var maxLag int64
	for _, s := range after {
		maxLag = max(maxLag, s.lag)
	}
	lagBound := int64(soakRate * soakLagSeconds)
	t.Logf("soak figures: %v at %d records/s (%d events, %d price updates), warm-up %v, %d samples after it; "+
		"RSS %.1f -> %.1f MiB (%+.1f%%), heap in use %.1f -> %.1f MiB (%+.1f%%), goroutines [%d,%d] -> [%d,%d], max lag %d (bound %d)",
		length, soakRate, res.n, res.priceUpdates, warm, len(after),
		rss1/(1<<20), rss4/(1<<20), 100*(rss4/rss1-1), heap1/(1<<20), heap4/(1<<20), 100*(heap4/heap1-1),
		g1lo, g1hi, g4lo, g4hi, maxLag, lagBound)
	if rss4 > rss1*(1+soakMemGrowth) {
		t.Errorf("RSS grew from %.1f to %.1f MiB (more than %.0f%%)", rss1/(1<<20), rss4/(1<<20), 100*soakMemGrowth)
	}
	// The heap's floor is what a leak moves: the mean also follows how
	// far each GC cycle lets garbage grow, which a short run samples in
	// few cycles.
	floor := func(ss []soakSample) float64 {
		lo := heap(ss[0])
		for _, s := range ss {
			lo = min(lo, heap(s))
		}
		return lo
	}
	floor1, floor4 := floor(firstQ), floor(lastQ)
	t.Logf("soak heap floors: %.1f -> %.1f MiB", floor1/(1<<20), floor4/(1<<20))
	if floor4 > floor1*(1+soakMemGrowth)+soakHeapSlack {
		t.Errorf("the floor of heap in use grew from %.1f to %.1f MiB (more than %.0f%% and %d KiB)", floor1/(1<<20), floor4/(1<<20), 100*soakMemGrowth, soakHeapSlack>>10)
	}
	if g4hi > g1hi+soakGoroutineSlack || g4lo < g1lo-soakGoroutineSlack {
		t.Errorf("goroutines moved from [%d,%d] to [%d,%d] (slack %d)", g1lo, g1hi, g4lo, g4hi, soakGoroutineSlack)
	}
	if maxLag >= lagBound {
		t.Errorf("lag reached %d records, bound %d (%d s of input)", maxLag, lagBound, soakLagSeconds)
	}

	// Every event joined exactly once; every window closed by the last
	// event (with a second of margin per partition) emitted once with its
	// exact count.
	rd := newReader(t, b, joined, windows)
	rd.readUntil(ctx, fmt.Sprintf("%d joined records", res.n), func() bool { return rd.count(joined) >= int(res.n) }, app)
	if err := app.stop(t); err != nil {
		t.Fatalf("Run returned %v", err)
	}
	rd.readToEnd(ctx)
	seen := make([]bool, res.n)
	for _, r := range rd.records(joined) {
		seq, price, ok := strings.Cut(string(r.Value), "/")
		i, err := strconv.ParseInt(seq, 10, 64)
		if !ok || err != nil || i < 0 || i >= res.n || price == "" {
			t.Fatalf("joined record %q/%q is not an event of this run", r.Key, r.Value)
		}
		if seen[i] {
			t.Fatalf("event %d joined twice", i)
		}
		seen[i] = true
	}
	if got := rd.count(joined); got != int(res.n) {
		t.Fatalf("%d joined records, want %d", got, res.n)
	}
	wantWin := map[string]int64{}
	sizeMs := size.Milliseconds()
	for i := range res.n {
		ts := base + i*1000/soakRate
		wantWin[fmt.Sprintf("%s@%d", key(int(i%soakKeys)), ts/sizeMs*sizeMs)]++
	}
	lastTs := base + (res.n-1)*1000/soakRate
	ks := kstream.TimeWindowedSerde(serde.String, size)
	emitted := map[string]bool{}
	for _, r := range rd.records(windows) {
		wk, err := ks.Deserialize(windows, r.Key)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := serde.Int64.Deserialize(windows, r.Value)
		id := fmt.Sprintf("%s@%d", wk.Key, wk.Start)
		if emitted[id] {
			t.Fatalf("window %s emitted twice", id)
		}
		emitted[id] = true
		if n != wantWin[id] {
			t.Fatalf("window %s: count %d, want %d", id, n, wantWin[id])
		}
	}
	closed := 0
	for id := range wantWin {
		start, _ := strconv.ParseInt(id[strings.IndexByte(id, '@')+1:], 10, 64)
		if start+sizeMs+grace.Milliseconds()+1000 > lastTs {
			continue
		}
		closed++
		if !emitted[id] {
			t.Fatalf("window %s closed (last event at %d) but was not emitted", id, lastTs)
		}
	}
	t.Logf("soak results: %d events joined exactly once, %d windows emitted (%d closed for certain), all exact", res.n, len(emitted), closed)
}

// sampleSoak samples the process and the App.
func sampleSoak(t *testing.T, app *runningApp) soakSample {
	t.Helper()
	var ms goruntime.MemStats
	goruntime.ReadMemStats(&ms)
	s := soakSample{heapInuse: ms.HeapInuse, goroutines: goruntime.NumGoroutine(), rssKB: vmRSS(t)}
	m := app.Metrics()
	for _, parts := range m.Lag {
		for _, l := range parts {
			s.lag += l
		}
	}
	s.processed = m.RecordsProcessed
	return s
}

// vmRSS returns the VmRSS of /proc/self/status in KiB.
func vmRSS(t *testing.T) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatalf("read the process's RSS: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS line %q: %v", sc.Text(), err)
			}
			return kb
		}
	}
	t.Fatalf("no VmRSS in /proc/self/status (%v)", sc.Err())
	return 0
}

// writeSoak writes the samples to dir/soak.csv and a chart of them to
// dir/soak.png.
func writeSoak(t *testing.T, dir string, samples []soakSample) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	cw := csv.NewWriter(&buf)
	_ = cw.Write([]string{"seconds", "rss_kib", "heap_inuse_bytes", "goroutines", "lag", "processed", "produced"})
	for _, s := range samples {
		_ = cw.Write([]string{
			strconv.FormatFloat(s.at.Seconds(), 'f', 1, 64), strconv.FormatInt(s.rssKB, 10),
			strconv.FormatUint(s.heapInuse, 10), strconv.Itoa(s.goroutines), strconv.FormatInt(s.lag, 10),
			strconv.FormatInt(s.processed, 10), strconv.FormatInt(s.produced, 10),
		})
	}
	cw.Flush()
	if err := os.WriteFile(filepath.Join(dir, "soak.csv"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	rss := make([]float64, len(samples))
	heap := make([]float64, len(samples))
	lag := make([]float64, len(samples))
	for i, s := range samples {
		rss[i] = float64(s.rssKB) / 1024
		heap[i] = float64(s.heapInuse) / (1 << 20)
		lag[i] = float64(s.lag)
	}
	img := soakChart(rss, heap, lag)
	buf.Reset()
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "soak.png"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// soakChart draws two panels over the same time axis, left to right: on
// top RSS (blue) and heap in use (green) in MiB from 0 to a round maximum,
// with a grey line every 50 MiB; below the total lag (red) from 0 to its
// maximum rounded up to a hundred, with a grey line every hundred records.
// Vertical grey lines mark every five minutes (every ten seconds for runs
// under five minutes).
func soakChart(rss, heap, lag []float64) image.Image {
	const w, h, pad, gap = 900, 500, 10, 20
	panelH := (h - 2*pad - gap) / 2
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	white := color.RGBA{255, 255, 255, 255}
	grey := color.RGBA{220, 220, 220, 255}
	black := color.RGBA{0, 0, 0, 255}
	for y := range h {
		for x := range w {
			img.Set(x, y, white)
		}
	}
	n := len(rss)
	every := 300 // samples (seconds) between vertical marks
	if n < 300 {
		every = 10
	}
	xOf := func(i int) int {
		if n < 2 {
			return pad
		}
		return pad + i*(w-2*pad-1)/(n-1)
	}
	panel := func(top int, top0 float64, step float64, series [][]float64, colors []color.RGBA) {
		bottom := top + panelH - 1
		yOf := func(v float64) int { return bottom - int(v/top0*float64(panelH-1)) }
		for v := step; v < top0; v += step {
			y := yOf(v)
			for x := pad; x < w-pad; x++ {
				img.Set(x, y, grey)
			}
		}
		for i := every; i < n; i += every {
			x := xOf(i)
			for y := top; y <= bottom; y++ {
				img.Set(x, y, grey)
			}
		}
		for x := pad; x < w-pad; x++ {
			img.Set(x, bottom, black)
			img.Set(x, top, black)
		}
		for y := top; y <= bottom; y++ {
			img.Set(pad, y, black)
			img.Set(w-pad-1, y, black)
		}
		for si, s := range series {
			for i := 1; i < len(s); i++ {
				soakLine(img, xOf(i-1), yOf(s[i-1]), xOf(i), yOf(s[i]), colors[si])
			}
		}
	}
	memMax := 50.0
	for i := range rss {
		for memMax < max(rss[i], heap[i]) {
			memMax += 50
		}
	}
	lagMax := 100.0
	for _, v := range lag {
		for lagMax < v {
			lagMax += 100
		}
	}
	panel(pad, memMax, 50, [][]float64{rss, heap}, []color.RGBA{{0, 0, 200, 255}, {0, 150, 0, 255}})
	panel(pad+panelH+gap, lagMax, 100, [][]float64{lag}, []color.RGBA{{200, 0, 0, 255}})
	return img
}

// soakLine draws a line from (x0,y0) to (x1,y1).
func soakLine(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA) {
	steps := max(abs(x1-x0), abs(y1-y0), 1)
	for i := 0; i <= steps; i++ {
		img.Set(x0+(x1-x0)*i/steps, y0+(y1-y0)*i/steps, c)
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
