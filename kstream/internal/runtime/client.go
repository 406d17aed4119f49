package runtime

import (
	"context"
	"fmt"
	"time"
)

const (
	// defaultTransactionTimeout is the transaction timeout of the
	// workers' producers, unless ClientOpts sets kgo.TransactionTimeout:
	// how long the broker lets a transaction stay open before aborting
	// it, which bounds how long a crashed or stopped instance's open
	// transaction holds back read_committed consumers of its partitions.
	// Kafka Streams uses the same under exactly-once.
	defaultTransactionTimeout = 10 * time.Second
	// restartBackoff is how long a fenced worker waits before it joins the
	// group again.
	restartBackoff = 500 * time.Millisecond
)

// TransactionalID returns the transactional id of a worker.
func TransactionalID(appID, instanceID string, worker int) string {
	return fmt.Sprintf("%s-%s-%d", appID, instanceID, worker)
}

// restartLocked replaces the client of a fenced worker: it closes every
// task (dirty ones dirty), forgets its assignment, closes the client
// (leaving the group), waits restartBackoff and makes a new client, which
// joins the group again. It unlocks mu while the old client closes (the
// close runs the rebalance callbacks). It returns an error when a task
// could not be closed cleanly or the new client cannot be made.
func (w *worker) restartLocked(ctx context.Context, cause error) error {
	w.Env.Counters.Restarts.Add(1)
	w.Logger.Warn("kstream: fenced: restarting the worker with a new client", "err", cause)
	w.proto.Restarting()
	w.publishStatsLocked()
	// The old client's late callbacks (an assignment racing the close)
	// must not make tasks: closing holds them off.
	w.closing = true
	w.lag.stop() // it may use the old client
	old := w.client
	w.mu.Unlock()
	old.CloseAllowingRebalance()
	select {
	case <-ctx.Done():
	case <-time.After(restartBackoff):
	}
	w.mu.Lock()
	w.closing = false
	w.proto.Restarting()
	clear(w.assigned)
	clear(w.hwm)
	clear(w.lag.looked)
	if err := w.checkFailureLocked(); err != nil {
		return err
	}
	return w.newGroupClient()
}
