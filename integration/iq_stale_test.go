package integration

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/integration/kafkatest"
	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
)

// Three instances, StandbyReplicas(1), static membership with a session
// timeout of 20 s. An instance holding active tasks stops (and its query
// server with it); until the group notices, its tasks stay assigned to it.
// Meanwhile, at both other instances, a stale read of each of its keys is
// answered by the key's standby with the exact count, "stale": true and
// "lag": 0 (read there, or forwarded there), while a read that is not
// stale is a retryable 503. After the rebalance the keys are answered, not
// stale, with the exact counts.
func TestStaleReadsFromStandbysWhileTheActiveIsGone(t *testing.T) {
	b := kafkatest.Require(t)
	ctx := testContext(t)
	const parts = 6
	in := newTopic(t, b, "iqstale-in", parts)
	out := newTopic(t, b, "iqstale-out", parts)
	appID := kafkatest.UniqueName(t, "iqstale-app")
	deleteTopicsAtEnd(t, b, appID+"-counts-changelog")
	topo := stateTopology(t, in, out)
	want := map[string]int64{}
	produce(ctx, t, producer(t, b), keyedBatch(in, parts, 0, 900, 60, want))
	opts := func(id string) []kstream.Opt {
		return []kstream.Opt{kstream.ApplicationID(appID), kstream.InstanceID(id), kstream.StateDir(t.TempDir()),
			kstream.StandbyReplicas(1), kstream.StaticMembership(true),
			kstream.ClientOpts(kgo.SessionTimeout(20 * time.Second))}
	}
	apps := []*iqApp{startIQApp(t, b, "a", topo, opts("a")...), startIQApp(t, b, "b", topo, opts("b")...), startIQApp(t, b, "c", topo, opts("c")...)}
	running := []*runningApp{apps[0].runningApp, apps[1].runningApp, apps[2].runningApp}
	byAddr := map[string]*iqApp{}
	for _, a := range apps {
		byAddr[a.addr] = a
	}
	var seen []string // what the last look saw, logged if the wait fails
	defer func() {
		if t.Failed() {
			t.Logf("last seen: %s", strings.Join(seen, "; "))
		}
	}()
	waitFor(ctx, t, "two tasks and two standbys per instance, 900 records processed, hosts known", func() bool {
		var n int64
		ok := true
		seen = seen[:0]
		for _, a := range apps {
			m := a.Metrics()
			hosts, err := a.StoreHosts("counts")
			seen = append(seen, fmt.Sprintf("%s: tasks %v, standbys %v, processed %d, rebalances %d, hosts %d (%v)",
				a.name, m.Tasks, m.StandbyTasks, m.RecordsProcessed, m.Rebalances, len(hosts), err))
			if err != nil || len(hosts) != 3 || len(m.Tasks) != 2 || len(m.StandbyTasks) != 2 {
				ok = false
			}
			n += m.RecordsProcessed
		}
		return ok && n == 900
	}, running...)

	gone := apps[0]
	md := map[string]kstream.KeyQueryMetadata{}
	for k := range want {
		m, err := kstream.QueryMetadataForKey(gone.App, "counts", k, serde.String)
		if err != nil {
			t.Fatal(err)
		}
		if m.Active != gone.addr {
			continue
		}
		if len(m.Standby) != 1 || byAddr[m.Standby[0]] == nil || m.Standby[0] == gone.addr {
			t.Fatalf("key %s: metadata %+v, want one standby on b or c", k, m)
		}
		md[k] = m
	}
	if len(md) == 0 {
		t.Fatal("a holds no key")
	}
	// The standbys read the changelogs on their own: wait until each of
	// a's keys is answered by its caught-up standby.
	waitFor(ctx, t, "a's keys answered by caught-up standbys", func() bool {
		for k, m := range md {
			ans, err := iqQuery(ctx, m.Standby[0], "/stores/counts/keys/"+k+"?stale=true")
			if err != nil {
				t.Fatal(err)
			}
			if ans.status != http.StatusOK || string(ans.body["value"]) != fmt.Sprint(want[k]) || string(ans.body["lag"]) != "0" {
				return false
			}
		}
		return true
	}, running...)

	rebalances := map[string]int64{}
	for _, a := range apps[1:] {
		rebalances[a.name] = a.Metrics().Rebalances
	}
	if err := gone.stop(t); err != nil {
		t.Fatalf("a: Run returned %v", err)
	}
	_ = gone.srv.Close()
	survivors := []*runningApp{apps[1].runningApp, apps[2].runningApp}
	stopped := time.Now()
	for k, m := range md {
		for _, a := range apps[1:] {
			ans, err := iqQuery(ctx, a.addr, "/stores/counts/keys/"+k+"?stale=true")
			if err != nil {
				t.Fatal(err)
			}
			if ans.status != http.StatusOK || string(ans.body["value"]) != fmt.Sprint(want[k]) || string(ans.body["found"]) != "true" ||
				string(ans.body["stale"]) != "true" || string(ans.body["lag"]) != "0" || string(ans.body["host"]) != fmt.Sprintf("%q", m.Standby[0]) {
				t.Fatalf("stale read of %s at %s with a gone: %d %s; want %d, stale, lag 0, from %s", k, a.name, ans.status, ans.raw, want[k], m.Standby[0])
			}
			ans, err = iqQuery(ctx, a.addr, "/stores/counts/keys/"+k)
			if err != nil {
				t.Fatal(err)
			}
			if ans.status != http.StatusServiceUnavailable || string(ans.body["retryable"]) != "true" || ans.retry == "" {
				t.Fatalf("read of %s at %s with a gone: %d %s; want a retryable 503", k, a.name, ans.status, ans.raw)
			}
		}
	}
	// All of it happened before the group rebalanced.
	for _, a := range apps[1:] {
		if n := a.Metrics().Rebalances; n != rebalances[a.name] {
			t.Fatalf("%s rebalanced (%d -> %d) during the stale reads, %v after a stopped", a.name, rebalances[a.name], n, time.Since(stopped))
		}
	}
	t.Logf("%d keys of a: stale reads from standbys and 503s at b and c within %v of a stopping", len(md), time.Since(stopped).Round(time.Millisecond))

	// The session times out, a's tasks move to b and c: every key is
	// answered, not stale, with its exact count.
	waitAssigned(ctx, t, parts, survivors...)
	for _, a := range apps[1:] {
		for k, n := range want {
			waitFor(ctx, t, "key "+k+" at "+a.name+" after the rebalance", func() bool {
				ans, err := iqQuery(ctx, a.addr, "/stores/counts/keys/"+k)
				ok := false
				if err == nil {
					ok, err = checkGet(ans, k, n)
				}
				if err == nil && ok && string(ans.body["stale"]) != "false" {
					err = fmt.Errorf("key %s: stale answer %s without ?stale", k, ans.raw)
				}
				if err != nil {
					t.Fatalf("after the rebalance, at %s: %v", a.name, err)
				}
				return ok
			}, survivors...)
		}
	}
	t.Logf("a's tasks taken over %v after it stopped", time.Since(stopped).Round(time.Second))
}
