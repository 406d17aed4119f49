package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
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
	// The old client's member id: its close leaves the group only when
	// a broker answers, and a member that did not leave holds up the
	// group's next rebalance (the new client's join) until its session
	// times out. The new client removes it (leaver).
	oldMember, _ := old.GroupMetadata()
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
	if err := w.newGroupClient(); err != nil {
		return err
	}
	if !w.cfg.StaticMembership {
		// A static member is replaced by the new client's join with the
		// same instance id; removing it would cost a rebalance.
		w.leaves.leave(ctx, w.client, w.cfg.AppID, oldMember, w.Logger)
	}
	return nil
}

// leaveRetryBound bounds how long a leaver keeps trying to remove a
// replaced member: past it, the member's session has timed out on any
// broker that was up meanwhile.
const leaveRetryBound = 5 * time.Minute

// leaver removes from the group the members of clients that a worker's
// restart closed while no broker answered (a broker outage, when a flush
// under exactly-once times out), on behalf of the closed client: a member
// that did not leave stays in the group until its session times out (45 s
// by default, counted again from a restarted coordinator's start), and the
// next rebalance waits for it. Each leave is a goroutine of the worker;
// stop cancels and waits for them.
type leaver struct {
	wg     sync.WaitGroup
	cancel []context.CancelFunc
}

// leave starts removing member from group through cl, until the broker
// answers (the member left or was gone), ctx ends, leaveRetryBound passes
// or stop is called. An empty member (the client never joined) is nothing
// to remove.
func (l *leaver) leave(ctx context.Context, cl *kgo.Client, group, member string, logger *slog.Logger) {
	if member == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, leaveRetryBound)
	l.cancel = append(l.cancel, cancel)
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer cancel()
		for {
			err := leaveGroup(ctx, cl, group, member)
			switch {
			case err == nil:
				logger.Info("kstream: removed the group member of the replaced client", "member", member)
				return
			case errors.Is(err, kerr.UnknownMemberID):
				return // it left or timed out
			case ctx.Err() != nil:
				return
			case !kerr.IsRetriable(err) && isKafkaError(err):
				logger.Warn("kstream: could not remove the group member of the replaced client; the group waits for its session to time out", "member", member, "err", err)
				return
			}
			// No broker answered within the client's retry timeout:
			// try again.
			select {
			case <-ctx.Done():
				return
			case <-time.After(restartBackoff):
			}
		}
	}()
}

// stop cancels the leaves in flight and waits for them.
func (l *leaver) stop() {
	for _, c := range l.cancel {
		c()
	}
	l.cancel = nil
	l.wg.Wait()
}

// leaveGroup sends a LeaveGroup for member of group through cl and returns
// the error of the request or of the member in the response.
func leaveGroup(ctx context.Context, cl *kgo.Client, group, member string) error {
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Group = group
	m := kmsg.NewLeaveGroupRequestMember()
	m.MemberID = member
	m.Reason = kmsg.StringPtr("streamwork: the client of a restarted worker, closed while no broker answered")
	req.Members = append(req.Members, m)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return err
	}
	for _, m := range resp.Members {
		if err := kerr.ErrorForCode(m.ErrorCode); err != nil {
			return err
		}
	}
	return nil
}

// isKafkaError reports whether err is an error code a broker returned.
func isKafkaError(err error) bool {
	var ke *kerr.Error
	return errors.As(err, &ke)
}
