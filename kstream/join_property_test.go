package kstream_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/kstream/kstreamtest"
	"github.com/streamwork-go/streamwork/serde"
)

// Stream-stream joins against a model: random out-of-order records on both
// sides (a grace longer than the input, so no record is late), then a
// record of another key far later that closes every window. Every pair
// within the windows is joined once, with the later timestamp; under left
// and outer joins every record of a kept side that met no match comes out
// once, unmatched, with its own timestamp.
func TestStreamStreamJoinProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for iter := range 120 {
		kind := []string{"inner", "left", "outer"}[iter%3]
		before, after := r.Int64N(30), r.Int64N(30)
		if before+after == 0 {
			after = 1
		}
		w := kstream.JoinTimeDifference(0, time.Hour).Before(time.Duration(before) * time.Millisecond).After(time.Duration(after) * time.Millisecond)
		d, l, rt := joinTopology(t, func(ls, rs kstream.Stream[string, string]) kstream.Stream[string, string] {
			switch kind {
			case "left":
				return kstream.LeftJoin(ls, rs, func(_ string, a string, b *string) string { return showJoin(&a, b) }, w, joinSerdes)
			case "outer":
				return kstream.OuterJoin(ls, rs, func(_ string, a, b *string) string { return showJoin(a, b) }, w, joinSerdes)
			}
			return kstream.Join(ls, rs, func(_ string, a, b string) string { return a + "+" + b }, w, joinSerdes)
		})
		type rec struct {
			left bool
			key  string
			v    string
			ts   int64
		}
		var recs []rec
		base := int64(1000)
		for i := range 30 {
			base += r.Int64N(8)
			recs = append(recs, rec{left: r.IntN(2) == 0, key: string(rune('a' + r.IntN(3))), v: fmt.Sprint(i), ts: max(0, base-r.Int64N(20))})
		}
		for _, x := range recs {
			in := rt
			if x.left {
				in = l
			}
			pipeS(t, in, x.key, x.v, x.ts)
		}
		pipeS(t, l, "z", "flush", 10*time.Hour.Milliseconds())

		var want []string
		matched := map[int]bool{}
		for i, a := range recs {
			for j, b := range recs {
				if !a.left || b.left || a.key != b.key || b.ts < a.ts-before || b.ts > a.ts+after {
					continue
				}
				matched[i], matched[j] = true, true
				want = append(want, fmt.Sprintf("%s:%s+%s@%d", a.key, a.v, b.v, max(a.ts, b.ts)))
			}
		}
		for i, a := range recs {
			if matched[i] || kind == "inner" || (kind == "left" && !a.left) {
				continue
			}
			if a.left {
				want = append(want, fmt.Sprintf("%s:%s+nil@%d", a.key, a.v, a.ts))
			} else {
				want = append(want, fmt.Sprintf("%s:nil+%s@%d", a.key, a.v, a.ts))
			}
		}
		var got []string
		for _, o := range joinOut(t, d) {
			if !strings.HasPrefix(o, "z:") {
				got = append(got, o)
			}
		}
		equal(t, fmt.Sprintf("iteration %d: %s join, before %d after %d", iter, kind, before, after), sortedStrings(got), sortedStrings(want))
		d.Close()
	}
}

// finalTable is the last value of each key in recs, tombstones deleting.
func finalTable(t *testing.T, d *kstreamtest.Driver) map[string]string {
	t.Helper()
	recs, err := kstreamtest.Output(d, "out", serde.String, serde.String).Records()
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, r := range recs {
		if r.Tombstone {
			delete(m, r.Key)
			continue
		}
		m[r.Key] = r.Value
	}
	return m
}

// Table-table and foreign-key joins against a model: random upserts and
// deletes on both tables; the result table at the end (the last value of
// each key, tombstones deleting) is the join of the two tables' final
// contents.
func TestTableJoinsProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for iter := range 90 {
		kind := []string{"inner", "left", "outer", "fk-inner", "fk-left"}[iter%5]
		b := kstream.NewBuilder()
		lt := kstream.TableFrom(b, "l", serde.String, serde.String)
		rt := kstream.TableFrom(b, "r", serde.String, serde.String)
		var out kstream.Table[string, string]
		fk := func(_ string, v string) string { return strings.SplitN(v, ".", 2)[0] }
		switch kind {
		case "inner":
			out = kstream.TableJoin(lt, rt, func(_ string, a, b string) string { return a + "+" + b })
		case "left":
			out = kstream.TableLeftJoin(lt, rt, func(_ string, a string, b *string) string { return showJoin(&a, b) })
		case "outer":
			out = kstream.TableOuterJoin(lt, rt, func(_ string, a, b *string) string { return showJoin(a, b) })
		case "fk-inner":
			out = kstream.ForeignKeyJoin(lt, rt, fk, func(_ string, a, b string) string { return a + "+" + b })
		case "fk-left":
			out = kstream.ForeignKeyLeftJoin(lt, rt, fk, func(_ string, a string, b *string) string { return showJoin(&a, b) })
		}
		out.ToStream().To("out", serde.String, serde.String)
		d := mustDriver(t, b)
		li := kstreamtest.Input(d, "l", serde.String, serde.String)
		ri := kstreamtest.Input(d, "r", serde.String, serde.String)
		left, right := map[string]string{}, map[string]string{}
		for i := range 40 {
			toLeft := r.IntN(2) == 0
			k := string(rune('a' + r.IntN(4)))
			in, m := ri, right
			if toLeft {
				in, m = li, left
			}
			if r.IntN(4) == 0 {
				if err := in.PipeTombstone(k, ts(int64(i))); err != nil {
					t.Fatal(err)
				}
				delete(m, k)
				continue
			}
			v := fmt.Sprintf("%c.%d", 'a'+r.IntN(4), i) // for fk joins, the left value's foreign key is its first letter
			pipeS(t, in, k, v, int64(i))
			m[k] = v
		}
		want := map[string]string{}
		switch kind {
		case "inner", "left", "outer":
			for k, lv := range left {
				if rv, ok := right[k]; ok {
					want[k] = lv + "+" + rv
				} else if kind != "inner" {
					want[k] = lv + "+nil"
				}
			}
			if kind == "outer" {
				for k, rv := range right {
					if _, ok := left[k]; !ok {
						want[k] = "nil+" + rv
					}
				}
			}
		default:
			for k, lv := range left {
				if rv, ok := right[fk(k, lv)]; ok {
					want[k] = lv + "+" + rv
				} else if kind == "fk-left" {
					want[k] = lv + "+nil"
				}
			}
		}
		equal(t, fmt.Sprintf("iteration %d: %s", iter, kind), finalTable(t, d), want)
		d.Close()
	}
}
