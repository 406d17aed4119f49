package kstream

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
	"github.com/streamwork-go/streamwork/serde"
	"github.com/streamwork-go/streamwork/state"
	"github.com/streamwork-go/streamwork/state/pebble"
)

// pebbleOpener opens every store of a task in Pebble under root.
type pebbleOpener struct {
	env  *pebble.Env
	root string
}

func (o pebbleOpener) Open(id TaskID, spec *storeSpec) (state.Store, string, error) {
	dir := filepath.Join(o.root, id.String(), spec.Name)
	s, err := o.env.Open(dir, spec.Name)
	return s, dir, err
}

func (o pebbleOpener) Destroy(dir string) error { return o.env.Destroy(dir) }

func (o pebbleOpener) Persistent(*storeSpec) bool { return true }

// BenchmarkTumblingCount measures records through a tumbling windowed
// count (one-minute windows, 100,000 keys, stream time advancing 1ms per
// record) in one task: decode, window store read and write (changelog to a
// collector that drops it), result forwarding and sink encode, on the
// memory and Pebble engines, with updates emitted and with EmitFinal.
func BenchmarkTumblingCount(b *testing.B) {
	const keys = 100_000
	for _, engineName := range []string{"memory", "pebble"} {
		for _, final := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/final=%v", engineName, final), func(b *testing.B) {
				bl := NewBuilder()
				in := From(bl, "in", serde.String, serde.Int64)
				opts := []NodeOpt{StoreName("counts")}
				if final {
					opts = append(opts, EmitFinal())
				}
				WindowedCount(WindowedBy(GroupByKey(in, serde.String, serde.Int64), Tumbling(time.Minute, NoGrace)), opts...).
					ToStream().To("out", TimeWindowedSerde(serde.String, time.Minute), serde.Int64)
				topo, err := bl.Build()
				if err != nil {
					b.Fatal(err)
				}
				env := testEnv(nopCollector{})
				env.Topo = topo.t
				if engineName == "pebble" {
					penv, err := pebble.NewEnv()
					if err != nil {
						b.Fatal(err)
					}
					defer penv.Close()
					env.State = pebbleOpener{env: penv, root: b.TempDir()}
				}
				tk, err := engine.NewTask(TaskID{}, topo.t.Subs[0], env)
				if err != nil {
					b.Fatal(err)
				}
				defer tk.Close()
				val, _ := serde.Int64.Serialize("in", 1)
				recs := make([]kgo.Record, keys)
				for i := range recs {
					recs[i] = kgo.Record{Topic: "in", Key: []byte(fmt.Sprintf("key-%06d", i*7919%keys)), Value: val}
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					r := &recs[i%len(recs)]
					r.Offset, r.Timestamp = int64(i), time.UnixMilli(int64(i))
					tk.Add(r)
					if _, err := tk.Process(1); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
			})
		}
	}
}
