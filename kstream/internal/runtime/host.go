package runtime

import (
	"context"
	"log/slog"
	"slices"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/kstream/internal/commit"
	"github.com/streamwork-go/streamwork/kstream/internal/engine"
)

// host is the worker as its commit protocol sees it (commit.Host). Every
// method but Locked runs with the worker's mu held.
type host struct{ w *worker }

var _ commit.Host = (*host)(nil)

func (h *host) Logger() *slog.Logger       { return h.w.Logger }
func (h *host) Counters() *engine.Counters { return h.w.Env.Counters }
func (h *host) Committed() {
	h.w.ws.commits++
	h.w.Env.Counters.Commits.Add(1)
}
func (h *host) Tasks() []*engine.Task              { return h.w.Order }
func (h *host) Client() *kgo.Client                { return h.w.client }
func (h *host) Session() *kgo.GroupTransactSession { return h.w.sess }
func (h *host) Flush(ctx context.Context) error    { return h.w.flushLocked(ctx) }
func (h *host) Stopping() <-chan struct{}          { return h.w.stopping }
func (h *host) ProducedInTxn() int                 { return h.w.prod.sentInTxn }
func (h *host) Closing() bool                      { return h.w.closing }
func (h *host) SetFailure(err error)               { h.w.setFailureLocked(err) }
func (h *host) Failure() error                     { return h.w.checkFailureLocked() }
func (h *host) IsRepartition(topic string) bool    { return h.w.repartition[topic] }
func (h *host) ResumeDrained(t *engine.Task)       { h.w.resumeDrainedLocked(t) }
func (h *host) WriteCheckpoint(t *engine.Task) error {
	return writeCheckpoint(t)
}
func (h *host) RemoveCheckpoint(t *engine.Task) error { return removeCheckpoint(t) }

func (h *host) ForgetProduction() {
	h.w.prod.sentInTxn = 0
	_ = h.w.prod.takeFailures()
}

func (h *host) CloseTasks(tasks []*engine.Task, why string) { h.w.closeTasksLocked(tasks, why) }

func (h *host) Unassign(parts map[string][]int32) []*engine.Task {
	return h.w.unassignLocked(parts)
}

func (h *host) TasksOf(parts map[string][]int32) []*engine.Task {
	w := h.w
	var out []*engine.Task
	for tp, ps := range parts {
		st := w.subOf[tp]
		if st == nil {
			continue
		}
		for _, p := range ps {
			if t := w.tasks[engine.TaskID{Subtopology: st.ID, Partition: p}]; t != nil && !slices.Contains(out, t) {
				out = append(out, t)
			}
		}
	}
	slices.SortFunc(out, func(a, b *task) int { return engine.CompareTaskIDs(a.ID, b.ID) })
	return out
}

func (h *host) Assigned(topic string, p int32) bool { return h.w.assigned[topic][p] }

func (h *host) AssignedPartitions() map[string][]int32 {
	w := h.w
	out := make(map[string][]int32, len(w.assigned))
	for tp, ps := range w.assigned {
		for p := range ps {
			out[tp] = append(out[tp], p)
		}
	}
	return out
}

func (h *host) HasTask(topic string, p int32) bool { return h.w.taskForLocked(topic, p) != nil }

func (h *host) CreateTasks(parts map[string][]int32) error { return h.w.createTasksLocked(parts) }

func (h *host) Locked(fn func()) {
	w := h.w
	w.mu.Lock()
	defer w.mu.Unlock()
	fn()
}
