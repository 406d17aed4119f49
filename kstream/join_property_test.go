package kstream_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/streamwork-go/streamwork/kstream"
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
