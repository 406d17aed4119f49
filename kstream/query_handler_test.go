package kstream

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/kstream/internal/runtime"
	"github.com/streamwork-go/streamwork/kstream/internal/wire"
	"github.com/streamwork-go/streamwork/serde"
)

func TestRouteKeyFindsActiveAndStandbys(t *testing.T) {
	task := wire.Task{Sub: 1, Partition: 3}
	hosts := []wire.HostTasks{
		{Addr: "a:1", Active: []wire.Task{{Sub: 0, Partition: 3}}, Standby: []wire.Task{task}},
		{Addr: "b:1", Active: []wire.Task{task}},
		{Addr: "c:1", Standby: []wire.Task{task, {Sub: 0, Partition: 3}}},
	}
	got := routeKey(hosts, task)
	want := KeyQueryMetadata{Active: "b:1", Standby: []string{"a:1", "c:1"}, Task: TaskID{Subtopology: 1, Partition: 3}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("routeKey = %+v, want %+v", got, want)
	}
	if got := routeKey(hosts, wire.Task{Sub: 1, Partition: 0}); got.Active != "" || got.Standby != nil {
		t.Fatalf("a task on no host = %+v", got)
	}
	sh := storeHosts(hosts, 0)
	wantSH := []StoreHost{{Addr: "a:1", Active: []int32{3}}, {Addr: "c:1", Standby: []int32{3}}}
	if !reflect.DeepEqual(sh, wantSH) {
		t.Fatalf("storeHosts = %+v, want %+v", sh, wantSH)
	}
}

// iqInstance is an App with a QueryHandler served at its QueryAddr.
type iqInstance struct {
	app  *App
	addr string
	stop func() error
}

func startIQInstance(t *testing.T, brokers []string, id string, more ...Opt) *iqInstance {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	app, err := New(countTopology(t), stOpts(t, brokers, "iq", t.TempDir(), append([]Opt{InstanceID(id), QueryAddr(addr)}, more...)...)...)
	if err != nil {
		t.Fatal(err)
	}
	h, err := app.QueryHandler(Queryable("counts", serde.String, serde.Int64))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	stop := rtRun(t, app)
	return &iqInstance{app: app, addr: addr, stop: stop}
}

func iqGet(t *testing.T, addr, path string) (int, map[string]json.RawMessage) {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("GET %s: %d %q: %v", path, resp.StatusCode, body, err)
	}
	if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
		t.Fatalf("GET %s: 503 without Retry-After", path)
	}
	return resp.StatusCode, m
}

// Two instances on the in-process broker: every key is answered exactly
// from both (forwarded where the other holds it), and a scan from either
// returns the whole store.
func TestQueryHandlerTwoInstances(t *testing.T) {
	brokers := rtCluster(t, map[string]int32{"in": 4, "out": 4})
	want := map[string]int64{}
	var recs []*kgo.Record
	for i := range 60 {
		k := fmt.Sprintf("k%02d", i%17)
		want[k]++
		recs = append(recs, &kgo.Record{Topic: "in", Partition: -1, Key: []byte(k), Value: []byte("x")})
	}
	rtProduce(t, brokers, recs)
	a := startIQInstance(t, brokers, "a")
	b := startIQInstance(t, brokers, "b")
	rtWaitFor(t, "both instances hold two tasks each, all records processed", func() bool {
		ma, mb := a.app.Metrics(), b.app.Metrics()
		return len(ma.Tasks) == 2 && len(mb.Tasks) == 2 && ma.RecordsProcessed+mb.RecordsProcessed == 60 &&
			len(ma.RestoringTasks)+len(mb.RestoringTasks) == 0
	})
	rtWaitFor(t, "both instances know the group's hosts", func() bool {
		_, ea := a.app.StoreHosts("counts")
		_, eb := b.app.StoreHosts("counts")
		return ea == nil && eb == nil
	})
	hosts, err := a.app.StoreHosts("counts")
	if err != nil || len(hosts) != 2 || len(hosts[0].Active)+len(hosts[1].Active) != 4 {
		t.Fatalf("StoreHosts = %+v, %v", hosts, err)
	}
	forwarded := 0
	for k, n := range want {
		md, err := QueryMetadataForKey(a.app, "counts", k, serde.String)
		if err != nil {
			t.Fatal(err)
		}
		if p := runtime.PartitionOf([]byte(k), 4); md.Task.Partition != p {
			t.Fatalf("%s: partition %d, want %d", k, md.Task.Partition, p)
		}
		for _, in := range []*iqInstance{a, b} {
			status, ans := iqGet(t, in.addr, "/stores/counts/keys/"+k)
			if status != http.StatusOK || string(ans["value"]) != fmt.Sprint(n) || string(ans["found"]) != "true" {
				t.Fatalf("GET %s at %s = %d %s; want %d", k, in.addr, status, ans, n)
			}
			if host := string(ans["host"]); host != fmt.Sprintf("%q", md.Active) {
				t.Fatalf("%s answered by %s, metadata says %s", k, host, md.Active)
			}
			if md.Active != in.addr {
				forwarded++
			}
		}
	}
	if forwarded != len(want) {
		t.Fatalf("%d answers forwarded, want %d (one per key)", forwarded, len(want))
	}
	if status, ans := iqGet(t, b.addr, "/stores/counts/keys/absent"); status != http.StatusOK || string(ans["found"]) != "false" {
		t.Fatalf("absent key = %d %s", status, ans)
	}
	if status, _ := iqGet(t, b.addr, "/stores/nope/keys/x"); status != http.StatusNotFound {
		t.Fatalf("unknown store = %d", status)
	}
	for _, in := range []*iqInstance{a, b} {
		status, ans := iqGet(t, in.addr, "/stores/counts/all")
		var entries []struct {
			Key   string
			Value int64
		}
		if err := json.Unmarshal(ans["entries"], &entries); err != nil || status != http.StatusOK {
			t.Fatalf("all at %s = %d %s: %v", in.addr, status, ans, err)
		}
		got := map[string]int64{}
		for _, e := range entries {
			got[e.Key] = e.Value
		}
		if !reflect.DeepEqual(got, want) || len(entries) != len(want) {
			t.Fatalf("all at %s = %v, want %v", in.addr, got, want)
		}
		status, ans = iqGet(t, in.addr, "/stores/counts/range?from=k01&to=k03")
		entries = nil
		if err := json.Unmarshal(ans["entries"], &entries); err != nil || status != http.StatusOK || len(entries) != 2 { // k01, k02
			t.Fatalf("range at %s = %d %s: %v", in.addr, status, ans, err)
		}
	}
}

// Two instances with StandbyReplicas(1): each keeps a standby of the
// other's two tasks. Once the standbys caught up, a stale read at the
// standby's instance is answered there, from the standby, with the exact
// value, "stale": true and "lag": 0; the same key without ?stale is
// forwarded to the active instance, and a stale read at the active
// instance is answered by its active task (not stale). Under both
// at-least-once and exactly-once (where restore writes the standby's
// stores through their open transactions).
func TestQueryHandlerStaleReadsFromStandby(t *testing.T) {
	for _, g := range []DeliveryGuarantee{AtLeastOnce, ExactlyOnce} {
		t.Run(g.String(), func(t *testing.T) { testStaleReadsFromStandby(t, g) })
	}
}

func testStaleReadsFromStandby(t *testing.T, g DeliveryGuarantee) {
	brokers := rtCluster(t, map[string]int32{"in": 4, "out": 4})
	a := startIQInstance(t, brokers, "a", StandbyReplicas(1), Guarantee(g))
	b := startIQInstance(t, brokers, "b", StandbyReplicas(1), Guarantee(g))
	byAddr := map[string]*iqInstance{a.addr: a, b.addr: b}
	rtWaitFor(t, "two tasks and two standbys on each instance", func() bool {
		ma, mb := a.app.Metrics(), b.app.Metrics()
		return len(ma.Tasks) == 2 && len(mb.Tasks) == 2 && len(ma.StandbyTasks) == 2 && len(mb.StandbyTasks) == 2 &&
			len(ma.RestoringTasks)+len(mb.RestoringTasks) == 0
	})
	want := map[string]int64{}
	var recs []*kgo.Record
	for i := range 60 {
		k := fmt.Sprintf("k%02d", i%17)
		want[k]++
		recs = append(recs, &kgo.Record{Topic: "in", Partition: -1, Key: []byte(k), Value: []byte("x")})
	}
	rtProduce(t, brokers, recs)
	rtWaitFor(t, "all records processed and both instances knowing the hosts", func() bool {
		_, ea := a.app.StoreHosts("counts")
		_, eb := b.app.StoreHosts("counts")
		return ea == nil && eb == nil && a.app.Metrics().RecordsProcessed+b.app.Metrics().RecordsProcessed == 60
	})
	md := map[string]KeyQueryMetadata{}
	for k := range want {
		m, err := QueryMetadataForKey(a.app, "counts", k, serde.String)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Standby) != 1 || m.Standby[0] == m.Active || byAddr[m.Active] == nil || byAddr[m.Standby[0]] == nil {
			t.Fatalf("key %s: metadata %+v, want one standby on the other instance", k, m)
		}
		md[k] = m
	}
	// The standbys read the changelogs on their own schedule: wait until
	// every key's stale answer is the exact count, caught up.
	rtWaitFor(t, "every stale read answered by a caught-up standby with the exact count", func() bool {
		for k, n := range want {
			status, ans := iqGet(t, md[k].Standby[0], "/stores/counts/keys/"+k+"?stale=true")
			if status != http.StatusOK || string(ans["value"]) != fmt.Sprint(n) || string(ans["lag"]) != "0" {
				return false
			}
		}
		return true
	})
	for k, n := range want {
		standby, active := md[k].Standby[0], md[k].Active
		status, ans := iqGet(t, standby, "/stores/counts/keys/"+k+"?stale=true")
		if status != http.StatusOK || string(ans["value"]) != fmt.Sprint(n) || string(ans["found"]) != "true" ||
			string(ans["stale"]) != "true" || string(ans["lag"]) != "0" || string(ans["host"]) != fmt.Sprintf("%q", standby) {
			t.Fatalf("stale GET %s at its standby %s = %d %s; want %d, stale, lag 0, read there", k, standby, status, ans, n)
		}
		status, ans = iqGet(t, standby, "/stores/counts/keys/"+k)
		if status != http.StatusOK || string(ans["value"]) != fmt.Sprint(n) || string(ans["stale"]) != "false" ||
			ans["lag"] != nil || string(ans["host"]) != fmt.Sprintf("%q", active) {
			t.Fatalf("GET %s at its standby %s = %d %s; want %d read at the active %s", k, standby, status, ans, n, active)
		}
		status, ans = iqGet(t, active, "/stores/counts/keys/"+k+"?stale=true")
		if status != http.StatusOK || string(ans["value"]) != fmt.Sprint(n) || string(ans["stale"]) != "false" ||
			ans["lag"] != nil || string(ans["host"]) != fmt.Sprintf("%q", active) {
			t.Fatalf("stale GET %s at its active %s = %d %s; want %d from the active task", k, active, status, ans, n)
		}
	}
	// A key that is in no store: a stale read of its standby finds nothing.
	m, err := QueryMetadataForKey(a.app, "counts", "absent", serde.String)
	if err != nil {
		t.Fatal(err)
	}
	if status, ans := iqGet(t, m.Standby[0], "/stores/counts/keys/absent?stale=true"); status != http.StatusOK ||
		string(ans["found"]) != "false" || string(ans["stale"]) != "true" {
		t.Fatalf("stale GET absent = %d %s", status, ans)
	}
}

// Stale reads in a loop at b of the keys whose task a runs and b keeps a
// standby of, while a processes and then stops (b takes its tasks over:
// each standby is closed and its task opened again as active). Every
// answer is a retryable 503 or a count that never goes back and never
// passes the key's final count; at the end, b answers every key exactly.
func TestQueryHandlerStaleReadsThroughPromotion(t *testing.T) {
	brokers := rtCluster(t, map[string]int32{"in": 4, "out": 4})
	a := startIQInstance(t, brokers, "a", StandbyReplicas(1))
	b := startIQInstance(t, brokers, "b", StandbyReplicas(1))
	rtWaitFor(t, "two tasks and two standbys on each instance, hosts known", func() bool {
		ma, mb := a.app.Metrics(), b.app.Metrics()
		_, ea := a.app.StoreHosts("counts")
		_, eb := b.app.StoreHosts("counts")
		return ea == nil && eb == nil && len(ma.Tasks) == 2 && len(mb.Tasks) == 2 && len(ma.StandbyTasks) == 2 && len(mb.StandbyTasks) == 2 &&
			len(ma.RestoringTasks)+len(mb.RestoringTasks) == 0
	})
	want := map[string]int64{}
	var keys []string
	for i := range 40 {
		k := fmt.Sprintf("k%02d", i)
		md, err := QueryMetadataForKey(b.app, "counts", k, serde.String)
		if err != nil {
			t.Fatal(err)
		}
		if md.Active == a.addr {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		t.Fatal("a holds none of 40 keys")
	}
	// Every key of a answered stale by b's standby before the loop.
	rtWaitFor(t, "b's standbys answering", func() bool {
		for _, k := range keys {
			if status, ans := iqGet(t, b.addr, "/stores/counts/keys/"+k+"?stale=true"); status != http.StatusOK || string(ans["stale"]) != "true" {
				return false
			}
		}
		return true
	})
	var recs []*kgo.Record
	for i := range 2000 {
		k := keys[i%len(keys)]
		want[k]++
		recs = append(recs, &kgo.Record{Topic: "in", Partition: -1, Key: []byte(k), Value: []byte("x")})
	}
	var (
		wg           sync.WaitGroup
		done         = make(chan struct{})
		mu           sync.Mutex // loopErr, stale, fresh
		loopErr      error
		stale, fresh int
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		loopErr = err
	}
	wg.Go(func() {
		seen := map[string]int64{}
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			k := keys[i%len(keys)]
			resp, err := http.Get("http://" + b.addr + "/stores/counts/keys/" + k + "?stale=true")
			if err != nil {
				fail(err)
				return
			}
			var ans map[string]json.RawMessage
			err = json.NewDecoder(resp.Body).Decode(&ans)
			resp.Body.Close()
			switch {
			case err != nil:
				fail(err)
				return
			case resp.StatusCode == http.StatusServiceUnavailable && string(ans["retryable"]) == "true":
				continue
			case resp.StatusCode != http.StatusOK:
				fail(fmt.Errorf("key %s: %d %s", k, resp.StatusCode, ans))
				return
			}
			var n int64
			if string(ans["found"]) == "true" {
				if n, err = strconv.ParseInt(string(ans["value"]), 10, 64); err != nil {
					fail(fmt.Errorf("key %s: %s", k, ans))
					return
				}
			}
			if n < seen[k] || n > want[k] {
				fail(fmt.Errorf("key %s: count %d after %d, final %d: %s", k, n, seen[k], want[k], ans))
				return
			}
			seen[k] = n
			mu.Lock()
			if string(ans["stale"]) == "true" {
				stale++
			} else {
				fresh++
			}
			mu.Unlock()
		}
	})
	rtProduce(t, brokers, recs)
	rtWaitFor(t, "a processed every record", func() bool { return a.app.Metrics().RecordsProcessed == 2000 })
	if err := a.stop(); err != nil {
		t.Fatalf("a: Run returned %v", err)
	}
	rtWaitFor(t, "b running all four tasks, no standbys", func() bool {
		m := b.app.Metrics()
		return len(m.Tasks) == 4 && len(m.RestoringTasks) == 0 && len(m.StandbyTasks) == 0
	})
	rtWaitFor(t, "b answering every key", func() bool {
		for _, k := range keys {
			if status, _ := iqGet(t, b.addr, "/stores/counts/keys/"+k); status != http.StatusOK {
				return false
			}
		}
		return true
	})
	rtWaitFor(t, "the loop reading b's active tasks (or failing)", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return fresh > 0 || loopErr != nil
	})
	close(done)
	wg.Wait()
	if loopErr != nil {
		t.Fatal(loopErr)
	}
	for _, k := range keys {
		status, ans := iqGet(t, b.addr, "/stores/counts/keys/"+k+"?stale=true")
		if status != http.StatusOK || string(ans["value"]) != fmt.Sprint(want[k]) || string(ans["stale"]) != "false" {
			t.Fatalf("after the takeover, key %s at b = %d %s; want %d from its active task", k, status, ans, want[k])
		}
	}
	if stale == 0 {
		t.Fatalf("no stale answer in the loop (%d from active tasks)", fresh)
	}
	t.Logf("answers in the loop: %d stale, %d from active tasks", stale, fresh)
}

func TestQueryMetadataBeforeRunIsRebalancing(t *testing.T) {
	app, err := New(countTopology(t), ApplicationID("iq"), Brokers("127.0.0.1:1"), QueryAddr("127.0.0.1:8080"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := QueryMetadataForKey(app, "counts", "k", serde.String); !errors.Is(err, ErrRebalancing) {
		t.Fatalf("before Run: %v", err)
	}
	if _, err := QueryMetadataForKey(app, "nope", "k", serde.String); !errors.Is(err, ErrUnknownStore) {
		t.Fatalf("unknown store: %v", err)
	}
	if _, err := New(countTopology(t), ApplicationID("iq"), Brokers("x:1"), QueryAddr("no-port")); !errors.Is(err, ErrConfig) {
		t.Fatalf("bad QueryAddr: %v", err)
	}
	if _, err := New(countTopology(t), ApplicationID("iq"), Brokers("x:1"), StaticMembership(true)); !errors.Is(err, ErrConfig) {
		t.Fatalf("StaticMembership without InstanceID: %v", err)
	}
}
