package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/streamwork-go/streamwork/integration/kafkatest"
)

// Regressions: a task store deleted while its checkpoint file stayed was
// restored only from the checkpoint on, so its counts restarted from zero
// with no log line; and a Pebble file truncated or garbled stopped the App
// on every restart (or panicked the process). Now a store keeps its
// checkpoint inside itself, and a damaged store is logged, deleted and
// restored from its changelog. Each case stops a word count cleanly, damages
// the store of one task (1_2) on disk, starts it again and checks that
// exactly that store is restored in full and that the counts go on exactly.
func TestDamagedOrDeletedStoreIsRestored(t *testing.T) {
	damages := []struct {
		name   string
		damage func(t *testing.T, storeDir string)
	}{
		{"StoreDeleted", func(t *testing.T, dir string) {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
		}},
		{"TableTruncated", func(t *testing.T, dir string) {
			eachStoreFile(t, dir, ".sst", func(p string, size int64) error { return os.Truncate(p, size/2) })
		}},
		{"TableDeleted", func(t *testing.T, dir string) {
			eachStoreFile(t, dir, ".sst", func(p string, _ int64) error { return os.Remove(p) })
		}},
		{"ManifestGarbled", func(t *testing.T, dir string) {
			eachStoreFile(t, dir, "MANIFEST", func(p string, _ int64) error {
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				for i := 10; i < 40 && i < len(b); i++ {
					b[i] ^= 0xff
				}
				return os.WriteFile(p, b, 0o644)
			})
		}},
	}
	for _, d := range damages {
		t.Run(d.name, func(t *testing.T) {
			b := kafkatest.Require(t)
			ctx := testContext(t)
			rig := newWordCountRig(t, b, "wcdamage")
			in, appID, changelog, topo, adm, prod, counts, dir, opts := rig.in, rig.appID, rig.changelog, rig.topo, rig.adm, rig.prod, rig.counts, rig.dir, rig.opts

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

			second := startApp(t, b, "second", topo, opts...)
			waitAssigned(ctx, t, 8, second)
			if got, wantRestored := second.Metrics().RestoredRecords, end[damaged]-start[damaged]; got != wantRestored {
				t.Fatalf("restored %d changelog records, want %d (all of partition %d, nothing of the others)", got, wantRestored, damaged)
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
