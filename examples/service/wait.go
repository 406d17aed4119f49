package service

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// WaitCommitted waits, for a minute at most, until the application group
// has committed its input up to ends (every partition of its input topics;
// empty partitions need nothing): under at-least-once, every output of
// those records is then written. It returns early with an error when
// appDone reports that the application stopped.
func WaitCommitted(ctx context.Context, adm *kadm.Client, group string, ends kadm.ListedOffsets, appDone chan error) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		offs, err := adm.FetchOffsets(ctx, group)
		if err == nil {
			done := true
			ends.Each(func(e kadm.ListedOffset) {
				if e.Offset == 0 {
					return // an empty partition: nothing to commit
				}
				if o, ok := offs.Lookup(e.Topic, e.Partition); !ok || o.Err != nil || o.At < e.Offset {
					done = false
				}
			})
			if done {
				return nil
			}
		}
		select {
		case err := <-appDone:
			appDone <- err // for the caller, which waits for it
			return fmt.Errorf("%s stopped before it committed its input: %v", group, err)
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s to commit its input: %w", group, ctx.Err())
		case <-tick.C:
		}
	}
}
