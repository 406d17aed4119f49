package pebble

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	pdb "github.com/cockroachdb/pebble/v2"

	"github.com/streamwork-go/streamwork/state"
)

// damagedStore writes 20,000 keys in four flushed tables plus a metadata
// record, closes the store, and returns its directory.
func damagedStore(t *testing.T, env *Env) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "s")
	s, err := env.Open(dir, "s")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20000 {
		if err := s.Put([]byte(fmt.Sprintf("key-%06d", i)), []byte(strings.Repeat("v", 100))); err != nil {
			t.Fatal(err)
		}
		if i%5000 == 4999 {
			if err := s.PutMeta("offset", []byte(fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// eachFile calls fn for every file of dir whose name matches.
func eachFile(t *testing.T, dir string, match func(name string) bool, fn func(path string, size int64)) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if match(e.Name()) {
			st, err := os.Stat(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			fn(filepath.Join(dir, e.Name()), st.Size())
			n++
		}
	}
	if n == 0 {
		t.Fatalf("no file in %s matched", dir)
	}
}

func isTable(name string) bool    { return strings.HasSuffix(name, ".sst") }
func isManifest(name string) bool { return strings.HasPrefix(name, "MANIFEST") }

// readAll opens the store and reads every key and the offset record; it
// returns how many keys it read, the record, and the first error.
func readAll(env *Env, dir string) (n int, offset []byte, err error) {
	s, err := env.Open(dir, "s")
	if err != nil {
		return 0, nil, err
	}
	defer s.Close()
	it := s.All()
	for it.Next() {
		n++
	}
	if err := it.Close(); err != nil {
		return n, nil, err
	}
	if _, err := s.Get([]byte("key-012345")); err != nil {
		return n, nil, err
	}
	offset, err = s.GetMeta("offset")
	return n, offset, err
}

// Damaged files surface as errors wrapping state.ErrCorrupt, at Open or on
// read, never as a panic or an exit (Pebble's default corruption handler
// calls Fatalf).
func TestCorruptionIsAnError(t *testing.T) {
	cases := []struct {
		name   string
		match  func(string) bool
		damage func(path string, size int64) error
	}{
		{"TruncatedTable", isTable, func(p string, size int64) error { return os.Truncate(p, size/2) }},
		{"DeletedTable", isTable, func(p string, _ int64) error { return os.Remove(p) }},
		{"ChecksumMismatch", isTable, func(p string, size int64) error {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			for i := size / 3; i < size/3+64; i++ {
				b[i] ^= 0xff
			}
			return os.WriteFile(p, b, 0o644)
		}},
		{"GarbledManifest", isManifest, func(p string, _ int64) error {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			for i := 10; i < 40 && i < len(b); i++ {
				b[i] ^= 0xff
			}
			return os.WriteFile(p, b, 0o644)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env, err := NewEnv(Logger(slog.New(slog.DiscardHandler)))
			if err != nil {
				t.Fatal(err)
			}
			defer env.Close()
			dir := damagedStore(t, env)
			eachFile(t, dir, tc.match, func(p string, size int64) {
				if err := tc.damage(p, size); err != nil {
					t.Fatal(err)
				}
			})
			n, _, err := readAll(env, dir)
			if !errors.Is(err, state.ErrCorrupt) {
				t.Fatalf("read %d keys, err %v; want an error wrapping state.ErrCorrupt", n, err)
			}
			// Damage found on a read is remembered: the next Open refuses
			// the store, so the runtime restores it.
			if _, err := env.Open(dir, "s"); !errors.Is(err, state.ErrCorrupt) {
				t.Fatalf("second Open: err %v; want state.ErrCorrupt", err)
			}
			if err := env.Destroy(dir); err != nil {
				t.Fatal(err)
			}
			s, err := env.Open(dir, "s")
			if err != nil {
				t.Fatalf("Open after Destroy: %v", err)
			}
			if n := s.ApproximateCount(); n != 0 {
				t.Fatalf("a destroyed store reopens with %d keys", n)
			}
			s.Close()
		})
	}
}

// A truncated manifest loses the later table additions: the store opens as
// it was at an earlier flush, its data and its metadata together, so the
// offset it records still matches what it holds.
func TestTruncatedManifestKeepsDataAndMetaTogether(t *testing.T) {
	env, err := NewEnv(Logger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	dir := damagedStore(t, env)
	eachFile(t, dir, isManifest, func(p string, size int64) {
		if err := os.Truncate(p, size/2); err != nil {
			t.Fatal(err)
		}
	})
	s, err := env.Open(dir, "s")
	if errors.Is(err, state.ErrCorrupt) {
		return // detected: as good
	}
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := 0
	for range state.Seq(s.All()) {
		n++
	}
	meta, err := s.GetMeta("offset")
	if err != nil {
		t.Fatal(err)
	}
	if meta == nil {
		if n != 0 {
			t.Fatalf("%d keys but no offset record", n)
		}
		return
	}
	if want := fmt.Sprint(n - 1); string(meta) != want {
		t.Fatalf("the store holds %d keys and records offset %s; want %s", n, meta, want)
	}
}

// Random byte flips in random files: no read panics, and a store that opens
// and reads without error holds data and an offset record that agree (a
// damaged manifest can take the store back to an earlier flush, or to
// empty: then the record is that flush's, or absent, and the runtime
// restores what is missing from the changelog).
func TestRandomDamageNeverPanics(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 40 {
		env, err := NewEnv(Logger(slog.New(slog.DiscardHandler)))
		if err != nil {
			t.Fatal(err)
		}
		dir := damagedStore(t, env)
		var files []string
		eachFile(t, dir, func(name string) bool { return isTable(name) || isManifest(name) }, func(p string, _ int64) {
			files = append(files, p)
		})
		p := files[rng.IntN(len(files))]
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for range 1 + rng.IntN(8) {
			b[rng.IntN(len(b))] ^= byte(1 + rng.IntN(255))
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		n, offset, err := readAll(env, dir)
		if err == nil {
			want := ""
			if n > 0 {
				want = fmt.Sprint(n - 1)
			}
			if string(offset) != want {
				t.Fatalf("round %d (%s): %d keys with offset record %q, want %q", round, filepath.Base(p), n, offset, want)
			}
		}
		env.Close()
	}
}

// A store written before the format version existed (keys unprefixed) is
// refused with state.ErrIncompatible, not misread.
func TestOlderLayoutIsIncompatible(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "old")
	db, err := pdb.Open(dir, &pdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set([]byte("word"), []byte{0, 0, 0, 0, 0, 0, 0, 7}, pdb.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	env, err := NewEnv(Logger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	if _, err := env.Open(dir, "old"); !errors.Is(err, state.ErrIncompatible) {
		t.Fatalf("Open of an older layout: err = %v, want state.ErrIncompatible", err)
	}
}

// Metadata survives a close and a reopen with the data.
func TestMetaPersists(t *testing.T) {
	env, err := NewEnv(Logger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	dir := damagedStore(t, env)
	s, err := env.Open(dir, "s")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := s.GetMeta("offset"); err != nil || string(v) != "19999" {
		t.Fatalf("GetMeta(offset) after reopen = %q, %v", v, err)
	}
	if n := s.ApproximateCount(); n != 20000 {
		t.Fatalf("ApproximateCount = %d, want 20000", n)
	}
}
