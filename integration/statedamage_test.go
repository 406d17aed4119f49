package integration

import (
	"errors"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/streamwork-go/streamwork/integration/kafkatest"
	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/state/pebble"
)

// Regressions: a task store deleted while its checkpoint file stayed was
// restored only from the checkpoint on, so its counts restarted from zero
// with no log line; and a Pebble file truncated or garbled stopped the App
// on every restart (or panicked the process). Now a store keeps its
// checkpoint inside itself, and a damaged store is logged, deleted and
// restored from its changelog. Each case stops a word count cleanly, damages
// the store of one task (1_2) on disk, starts it again and checks the log
// line that names the store and what was wrong, that exactly that store is
// restored in full (or, for a damaged write-ahead log, which after a clean
// close holds nothing the store needs, that nothing is restored) and that
// the counts go on exactly.
func TestDamagedOrDeletedStoreIsRestored(t *testing.T) {
	const storeDir = "dir=" // every damage log line names the store's directory
	damages := []struct {
		name   string
		eos    bool
		damage func(t *testing.T, storeDir string)
		// log is what one line of the second App's log holds, besides the
		// store's name.
		log []string
		// intact: the damage does not touch what the store holds, which
		// opens as it was, restores nothing and logs no damage.
		intact bool
	}{
		{name: "StoreDeleted", damage: func(t *testing.T, dir string) {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
		}, log: []string{"no checkpoint", "restoring it in full"}},
		{name: "TableTruncated", damage: func(t *testing.T, dir string) {
			eachStoreFile(t, dir, ".sst", func(p string, size int64) error { return os.Truncate(p, size/2) })
		}, log: []string{"store cannot be used", storeDir, "corrupt"}},
		{name: "TableDeleted", damage: func(t *testing.T, dir string) {
			eachStoreFile(t, dir, ".sst", func(p string, _ int64) error { return os.Remove(p) })
		}, log: []string{"store cannot be used", storeDir, "corrupt"}},
		{name: "ManifestGarbled", damage: func(t *testing.T, dir string) {
			eachStoreFile(t, dir, "MANIFEST", garble)
		}, log: []string{"store cannot be used", storeDir, "corrupt"}},
		{name: "OptionsGarbled", damage: func(t *testing.T, dir string) {
			eachStoreFile(t, dir, "OPTIONS", garble)
		}, log: []string{"store cannot be used", storeDir, "corrupt"}},
		{name: "CheckpointGarbled", damage: func(t *testing.T, dir string) {
			putStoreMeta(t, dir, wcStore, "streamwork.changelog", []byte("\xffnot a checkpoint"))
		}, log: []string{"unreadable checkpoint", "restoring the store from the start"}},
		// Under exactly-once a store commits to its write-ahead log; a clean
		// close flushes the memtable to a table, so the log it leaves holds
		// nothing the store needs: Pebble reads damage at the end of the
		// last log as a torn write (as after a crash, where a store's data
		// and checkpoint are in one batch and go or stay together).
		{name: "WALGarbled", eos: true, damage: func(t *testing.T, dir string) {
			eachStoreFile(t, dir, ".log", garble)
		}, intact: true},
		{name: "WALTruncated", eos: true, damage: func(t *testing.T, dir string) {
			eachStoreFile(t, dir, ".log", func(p string, size int64) error { return os.Truncate(p, size/2) })
		}, intact: true},
	}
	for _, d := range damages {
		t.Run(d.name, func(t *testing.T) {
			b := kafkatest.Require(t)
			ctx := testContext(t)
			rig := newWordCountRig(t, b, "wcdamage")
			in, appID, changelog, topo, adm, prod, counts, dir, opts := rig.in, rig.appID, rig.changelog, rig.topo, rig.adm, rig.prod, rig.counts, rig.dir, rig.opts
			if d.eos {
				opts = append(opts, kstream.Guarantee(kstream.ExactlyOnce))
			}

			want := map[string]int64{}
			lines1, _ := wordCorpus(5, 1500, 200, want)
			first := startApp(t, b, "first", topo, opts...)
			waitAssigned(ctx, t, 8, first)
			produce(ctx, t, prod, lineRecords(in, lines1, 0, 4))
			counts.waitCounts(ctx, t, want, first)
			if err := first.stop(t); err != nil {
				t.Fatalf("first: Run returned %v", err)
			}
			start, end := offsetRange(ctx, t, adm, changelog)
			const damaged = 2 // task 1_2 holds changelog partition 2
			if end[damaged]-start[damaged] == 0 {
				t.Fatal("the damaged task's changelog partition is empty")
			}
			d.damage(t, filepath.Join(dir, appID, "1_2", wcStore))

			logs := newLogLines(t, "second")
			second := startApp(t, b, "second", topo, append(opts, kstream.Logger(logs.logger))...)
			waitAssigned(ctx, t, 8, second)
			if d.intact {
				if got := second.Metrics().RestoredRecords; got != 0 {
					t.Fatalf("restored %d changelog records, want 0 (the store is intact)", got)
				}
				logs.none(t, "store cannot be used")
				logs.none(t, "no checkpoint")
			} else {
				if got, wantRestored := second.Metrics().RestoredRecords, end[damaged]-start[damaged]; got != wantRestored {
					t.Fatalf("restored %d changelog records, want %d (all of partition %d, nothing of the others)", got, wantRestored, damaged)
				}
				logs.require(t, append([]string{"store=" + wcStore}, d.log...)...)
			}
			requireStoreEquals(t, second, wcStore, want)
			lines2, _ := wordCorpus(6, 1500, 200, want)
			produce(ctx, t, prod, lineRecords(in, lines2, len(lines1), 4))
			counts.waitCounts(ctx, t, want, second)
			requireStoreEquals(t, second, wcStore, want)
			if err := second.stop(t); err != nil {
				t.Fatalf("second: Run returned %v", err)
			}
		})
	}
}

// garble inverts 30 bytes of the file at path, from its tenth byte.
func garble(path string, _ int64) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	for i := 10; i < 40 && i < len(b); i++ {
		b[i] ^= 0xff
	}
	return os.WriteFile(path, b, 0o644)
}

// putStoreMeta writes value as the metadata record name of the closed
// Pebble store in dir, durably.
func putStoreMeta(t *testing.T, dir, store, name string, value []byte) {
	t.Helper()
	env, err := pebble.NewEnv()
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	st, err := env.Open(dir, store)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutMeta(name, value); err != nil {
		t.Fatal(err)
	}
	if err := st.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
}

// logLines is an App logger (info level and up) that also passes its lines
// to t.Log, and keeps them for require.
type logLines struct {
	logger *slog.Logger
	mu     sync.Mutex
	lines  []string
	out    *testWriter
}

func newLogLines(t *testing.T, name string) *logLines {
	l := &logLines{out: &testWriter{t: t}}
	t.Cleanup(l.out.close)
	l.logger = slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelInfo})).With("app", name)
	return l
}

// Write implements io.Writer for the logger's handler.
func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.lines = append(l.lines, string(p))
	l.mu.Unlock()
	return l.out.Write(p)
}

// require fails t unless some line holds every one of parts.
func (l *logLines) require(t *testing.T, parts ...string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
next:
	for _, line := range l.lines {
		for _, p := range parts {
			if !strings.Contains(line, p) {
				continue next
			}
		}
		return
	}
	t.Fatalf("no log line holds all of %q", parts)
}

// none fails t if a line holds part.
func (l *logLines) none(t *testing.T, part string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if strings.Contains(line, part) {
			t.Fatalf("log line %q holds %q", line, part)
		}
	}
}

// eachStoreFile calls damage for every file of the store in dir whose name
// contains part, and fails t when there is none.
func eachStoreFile(t *testing.T, dir, part string, damage func(path string, size int64) error) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if !strings.Contains(e.Name(), part) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := damage(p, st.Size()); err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n == 0 {
		t.Fatalf("no %q file in store %s", part, dir)
	}
}

// State that is not the App's own is not used. A state directory shared by
// two applications keeps each one's state under its application id: the
// second application starts from nothing (its counts hold its own input
// only) and leaves the first one's stores as they were. State left by an
// older topology of the first application (a task directory of a
// sub-topology it no longer has, a store directory it no longer puts in a
// task) is deleted with a log line naming it when the application starts
// again, and its own stores are used as they are (nothing restored).
func TestForeignOrStaleStateIsNotUsed(t *testing.T) {
	b := kafkatest.Require(t)
	ctx := testContext(t)
	rig := newWordCountRig(t, b, "wcforeign")
	other := newWordCountRig(t, b, "wcother")
	other.opts = append(other.opts, kstream.StateDir(rig.dir)) // one state directory for both

	want1 := map[string]int64{}
	lines1, _ := wordCorpus(7, 800, 100, want1)
	first := startApp(t, b, "first", rig.topo, rig.opts...)
	waitAssigned(ctx, t, 8, first)
	produce(ctx, t, rig.prod, lineRecords(rig.in, lines1, 0, 4))
	rig.counts.waitCounts(ctx, t, want1, first)
	if err := first.stop(t); err != nil {
		t.Fatalf("first: Run returned %v", err)
	}
	stored, err := kstream.StoredOffsets(rig.dir, rig.appID)
	if err != nil || len(stored[rig.changelog]) != 4 {
		t.Fatalf("StoredOffsets of %s: %v, %v; want the 4 partitions of %s", rig.appID, stored, err, rig.changelog)
	}

	want2 := map[string]int64{}
	lines2, _ := wordCorpus(8, 800, 100, want2)
	second := startApp(t, b, "other", other.topo, other.opts...)
	waitAssigned(ctx, t, 8, second)
	produce(ctx, t, other.prod, lineRecords(other.in, lines2, 0, 4))
	other.counts.waitCounts(ctx, t, want2, second)
	requireStoreEquals(t, second, wcStore, want2)
	if err := second.stop(t); err != nil {
		t.Fatalf("other: Run returned %v", err)
	}
	if again, err := kstream.StoredOffsets(rig.dir, rig.appID); err != nil || !maps.Equal(again[rig.changelog], stored[rig.changelog]) {
		t.Fatalf("the other application changed %s's stores: StoredOffsets %v (%v), was %v", rig.appID, again, err, stored)
	}

	// Left-overs of an older topology, copies of a real store.
	appDir := filepath.Join(rig.dir, rig.appID)
	src := filepath.Join(appDir, "1_2", wcStore)
	for _, dst := range []string{filepath.Join(appDir, "5_0", wcStore), filepath.Join(appDir, "1_2", "old-counts")} {
		if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
			t.Fatal(err)
		}
	}
	logs := newLogLines(t, "third")
	third := startApp(t, b, "third", rig.topo, append(rig.opts, kstream.Logger(logs.logger))...)
	waitAssigned(ctx, t, 8, third)
	logs.require(t, "state of a task of a sub-topology this topology does not have", "task=5_0")
	logs.require(t, "state of a store this topology does not have here", "store=old-counts", "task=1_2")
	for _, gone := range []string{"5_0", filepath.Join("1_2", "old-counts")} {
		if _, err := os.Stat(filepath.Join(appDir, gone)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still in the state directory (%v)", gone, err)
		}
	}
	if got := third.Metrics().RestoredRecords; got != 0 {
		t.Fatalf("restored %d changelog records, want 0 (the stores are the application's own, intact)", got)
	}
	requireStoreEquals(t, third, wcStore, want1)
	if err := third.stop(t); err != nil {
		t.Fatalf("third: Run returned %v", err)
	}
}
