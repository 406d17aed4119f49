package storetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/streamwork-go/streamwork/state"
)

// Metamorphic applies the same sequence of ops random operations, drawn
// from seed, to every store and fails t at the first operation whose result
// differs between them, printing the operations so far. The operations are
// Put (also with nil and empty values), Delete, Get, Range, Prefix, All,
// Flush, and scans with writes interleaved; keys are short and drawn from
// bytes that stress ordering (0x00, 0xff), so operations often collide.
// It does not close the stores.
func Metamorphic(t testing.TB, seed uint64, ops int, stores ...state.Store) {
	t.Helper()
	if len(stores) < 2 {
		t.Fatal("storetest.Metamorphic needs at least two stores")
	}
	r := newRand(seed)
	var log []string
	fail := func(format string, args ...any) {
		t.Helper()
		tail := log[max(0, len(log)-20):]
		t.Fatalf("seed %d, op %d: %s\nlast operations:\n  %s", seed, len(log)-1,
			fmt.Sprintf(format, args...), strings.Join(tail, "\n  "))
	}
	// each runs fn on every store and fails on the first result that
	// differs from the first store's.
	each := func(what string, fn func(s state.Store) (string, error)) {
		t.Helper()
		var want string
		for i, s := range stores {
			got, err := fn(s)
			if err != nil {
				fail("%s on %s: %v", what, s.Name(), err)
			}
			if i == 0 {
				want = got
			} else if got != want {
				fail("%s: %s returned\n    %s\nbut %s returned\n    %s", what, stores[0].Name(), want, s.Name(), got)
			}
		}
	}
	scan := func(it state.Iterator) (string, error) {
		var b strings.Builder
		for it.Next() {
			fmt.Fprintf(&b, "%x=%x ", it.Key(), it.Value())
		}
		return b.String(), it.Close()
	}
	write := func() {
		k := []byte(r.key(4))
		switch n := r.n(10); {
		case n < 6:
			v := r.value()
			log = append(log, fmt.Sprintf("Put(%x, %x)", k, v))
			each("Put", func(s state.Store) (string, error) { return "", s.Put(k, v) })
		case n < 7:
			log = append(log, fmt.Sprintf("Put(%x, nil)", k))
			each("Put nil", func(s state.Store) (string, error) { return "", s.Put(k, nil) })
		default:
			log = append(log, fmt.Sprintf("Delete(%x)", k))
			each("Delete", func(s state.Store) (string, error) { return "", s.Delete(k) })
		}
	}
	for range ops {
		switch n := r.n(100); {
		case n < 60:
			write()
		case n < 72:
			k := []byte(r.key(4))
			log = append(log, fmt.Sprintf("Get(%x)", k))
			each("Get", func(s state.Store) (string, error) {
				v, err := s.Get(k)
				if v == nil {
					return "absent", err
				}
				return fmt.Sprintf("%x", v), err
			})
		case n < 82:
			from, to := r.bound(3), r.bound(3)
			log = append(log, fmt.Sprintf("Range(%x, %x)", from, to))
			each("Range", func(s state.Store) (string, error) { return scan(s.Range(from, to)) })
		case n < 90:
			p := []byte(r.key(3))
			log = append(log, fmt.Sprintf("Prefix(%x)", p))
			each("Prefix", func(s state.Store) (string, error) { return scan(s.Prefix(p)) })
		case n < 93:
			log = append(log, "Flush()")
			each("Flush", func(s state.Store) (string, error) { return "", s.Flush() })
		case n < 97:
			log = append(log, "scan while writing")
			its := make([]state.Iterator, len(stores))
			for i, s := range stores {
				its[i] = s.All()
			}
			for range 1 + r.n(5) {
				write()
			}
			each("scan while writing", func(s state.Store) (string, error) {
				return scan(its[slices.Index(stores, s)])
			})
		default:
			log = append(log, "All()")
			each("All", func(s state.Store) (string, error) { return scan(s.All()) })
		}
	}
	log = append(log, "final All()")
	each("final All", func(s state.Store) (string, error) { return scan(s.All()) })
}
