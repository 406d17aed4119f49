package service

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ReadAll reads topics from their start to their end offsets as of the
// call, read-committed: the records of aborted transactions are skipped.
// Call it once the writers are done. Transaction markers are read too (and
// dropped), so that the end is reached also when the last offset is a
// marker. It gives up after a minute. The records come in partition order
// per topic and partition.
func ReadAll(ctx context.Context, addrs []string, topics ...string) (map[string][]*kgo.Record, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	admCl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		return nil, err
	}
	defer admCl.Close()
	ends, err := kadm.NewClient(admCl).ListEndOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list end offsets of %v: %w", topics, err)
	}
	want := map[string]map[int32]int64{}
	parts := map[string]map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset == 0 {
			return
		}
		if want[o.Topic] == nil {
			want[o.Topic], parts[o.Topic] = map[int32]int64{}, map[int32]kgo.Offset{}
		}
		want[o.Topic][o.Partition] = o.Offset
		parts[o.Topic][o.Partition] = kgo.NewOffset().At(0)
	})
	out := make(map[string][]*kgo.Record, len(topics))
	if len(want) == 0 {
		return out, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumePartitions(parts),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("reading %v to %v: %w", topics, ends.Offsets(), err)
		}
		if err := fs.Err0(); err != nil {
			return nil, fmt.Errorf("reading %v: %w", topics, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := want[r.Topic][r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			if !r.Attrs.IsControl() {
				out[r.Topic] = append(out[r.Topic], r)
			}
			if r.Offset+1 >= end {
				delete(want[r.Topic], r.Partition)
				if len(want[r.Topic]) == 0 {
					delete(want, r.Topic)
				}
			}
		})
	}
	return out, nil
}

// WaitSettled waits until an at-least-once application group has
// committed every record of its input topics and of its repartition
// topics (topics holds both), and no more are written to them: then every
// output of the input is written. It first waits for the input (the
// application has made its repartition topics by then), then for all of
// topics, until their end offsets stop moving. It returns early with an
// error when appDone reports that the application stopped.
//
// Under exactly-once the end offsets of topics the application writes
// include transaction markers, which no committed offset reaches: wait on
// the input alone there (WaitCommitted).
func WaitSettled(ctx context.Context, adm *kadm.Client, group string, input string, topics []string, appDone chan error) error {
	ends, err := adm.ListEndOffsets(ctx, input)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("list end offsets of %s: %w", input, err)
	}
	if err := WaitCommitted(ctx, adm, group, ends, appDone); err != nil {
		return err
	}
	var prev map[string]map[int32]int64
	for {
		ends, err := adm.ListEndOffsets(ctx, topics...)
		if err == nil {
			err = ends.Error()
		}
		if err != nil {
			return fmt.Errorf("list end offsets of %v: %w", topics, err)
		}
		cur := map[string]map[int32]int64{}
		ends.Each(func(o kadm.ListedOffset) {
			if cur[o.Topic] == nil {
				cur[o.Topic] = map[int32]int64{}
			}
			cur[o.Topic][o.Partition] = o.Offset
		})
		if prev != nil && sameOffsets(prev, cur) {
			return nil
		}
		if err := WaitCommitted(ctx, adm, group, ends, appDone); err != nil {
			return err
		}
		prev = cur
	}
}

func sameOffsets(a, b map[string]map[int32]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for tp, ps := range a {
		if len(ps) != len(b[tp]) {
			return false
		}
		for p, o := range ps {
			if b[tp][p] != o {
				return false
			}
		}
	}
	return true
}
