package runtime

import (
	"cmp"
	"slices"
	"time"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
	"github.com/streamwork-go/streamwork/state"
)

// The detailed Metrics sections. The worker goroutine keeps the worker's
// counters (busy time, commits, rebalances, pauses) and the history rates
// are computed from, under mu; publishStatsLocked turns them and its
// tasks' own statistics (engine/stats.go) into the sections every
// statsInterval, and hands them to App.Metrics under the stats mutex.

const (
	// thrashBound is how many pause-resume cycles of one partition within
	// engine.RateWindow make it thrashing.
	thrashBound = 10
	// storeStatsInterval is how often the stores' sizes are read (their
	// engines' estimates cost more than a counter).
	storeStatsInterval = time.Second
	// historyStep is the spacing of the samples rates are computed from.
	historyStep = time.Second
	historyLen  = int(engine.RateWindow/historyStep) + 1
)

// history keeps a cumulative counter's value at most once a historyStep,
// over the last RateWindow, to compute its rate.
type history struct {
	at   [historyLen]time.Time
	v    [historyLen]int64
	head int // the oldest sample
	n    int
}

// add records v at now, unless the latest sample is less than historyStep
// old.
func (h *history) add(now time.Time, v int64) {
	if h.n > 0 && now.Sub(h.at[(h.head+h.n-1)%historyLen]) < historyStep {
		return
	}
	if h.n == historyLen {
		h.head = (h.head + 1) % historyLen
		h.n--
	}
	i := (h.head + h.n) % historyLen
	h.at[i], h.v[i] = now, v
	h.n++
}

// delta returns how much the counter grew from the oldest sample not
// older than RateWindow (the oldest one, if all are) to v at now, and over
// what span.
func (h *history) delta(now time.Time, v int64) (int64, time.Duration) {
	for k := range h.n {
		i := (h.head + k) % historyLen
		if now.Sub(h.at[i]) <= engine.RateWindow || k == h.n-1 {
			return v - h.v[i], now.Sub(h.at[i])
		}
	}
	return 0, 0
}

// rate returns the counter's rate per second over RateWindow.
func (h *history) rate(now time.Time, v int64) float64 {
	d, span := h.delta(now, v)
	if span <= 0 {
		return 0
	}
	return float64(d) / span.Seconds()
}

// share returns the part of the span over RateWindow that the duration
// counter v grew by, in [0, 1].
func (h *history) share(now time.Time, v time.Duration) float64 {
	d, span := h.delta(now, int64(v))
	if span <= 0 {
		return 0
	}
	return min(1, max(0, float64(d)/float64(span)))
}

// pauseStats are one input partition's backpressure pauses.
type pauseStats struct {
	pauses   int64
	pausedAt time.Time // zero while not paused
	paused   time.Duration
	// recent are the times of the latest thrashBound+1 pauses.
	recent    [thrashBound + 1]time.Time
	next      int
	thrashing bool
}

// thrashingAt reports whether more than thrashBound pauses fell within
// RateWindow before now.
func (p *pauseStats) thrashingAt(now time.Time) bool {
	oldest := p.recent[p.next] // the oldest of the last thrashBound+1
	return !oldest.IsZero() && now.Sub(oldest) <= engine.RateWindow
}

// workerStats are what the worker goroutine counts for Metrics, under mu.
type workerStats struct {
	start      time.Time
	busy       time.Duration
	commits    int64
	commitTime time.Duration
	commitMax  time.Duration
	rebalances int64
	// processedClosed counts the records of tasks that closed, so that the
	// worker's count never goes back.
	processedClosed int64

	processedH, busyH, commitsH, commitTimeH history
	tasks                                    map[engine.TaskID]*history
	nodes                                    map[string]*[2]history // records in, time
	pauses                                   map[topicPartition]*pauseStats

	stores     []engine.StoreMetrics
	storesRead time.Time
}

func (s *workerStats) init(now time.Time) {
	s.start = now
	s.tasks = make(map[engine.TaskID]*history)
	s.nodes = make(map[string]*[2]history)
	s.pauses = make(map[topicPartition]*pauseStats)
}

// pausedLocked records that tp was paused for backpressure.
func (w *worker) pausedLocked(tp topicPartition) {
	now := time.Now()
	p := w.ws.pauses[tp]
	if p == nil {
		p = new(pauseStats)
		w.ws.pauses[tp] = p
	}
	p.pauses++
	p.pausedAt = now
	p.recent[p.next] = now
	p.next = (p.next + 1) % len(p.recent)
}

// resumedLocked records that tp was resumed after a pause.
func (w *worker) resumedLocked(tp topicPartition) {
	if p := w.ws.pauses[tp]; p != nil && !p.pausedAt.IsZero() {
		p.paused += time.Since(p.pausedAt)
		p.pausedAt = time.Time{}
	}
}

// taskClosedLocked keeps what a closing task counted and forgets its
// histories.
func (w *worker) taskClosedLocked(t *task) {
	w.ws.processedClosed += t.Stats.Processed
	delete(w.ws.tasks, t.ID)
	for _, q := range t.Queues {
		delete(w.ws.pauses, topicPartition{q.Topic, q.Partition})
	}
}

// detailed are the sections one worker publishes.
type detailed struct {
	worker     engine.WorkerMetrics
	tasks      []engine.TaskMetrics
	nodes      []engine.NodeMetrics
	partitions []engine.PartitionMetrics
	stores     []engine.StoreMetrics
	restores   []engine.RestoreMetrics
}

// detailLocked computes the worker's sections at now.
func (w *worker) detailLocked(now time.Time) detailed {
	ws := &w.ws
	var d detailed
	processed := ws.processedClosed
	nodes := map[string]*engine.NodeMetrics{}
	for _, t := range w.Order {
		processed += t.Stats.Processed
		h := ws.tasks[t.ID]
		if h == nil {
			h = new(history)
			ws.tasks[t.ID] = h
		}
		h.add(now, t.Stats.Processed)
		state := "running"
		if w.restore.restoring(t) {
			state = "restoring"
		}
		d.tasks = append(d.tasks, engine.TaskMetrics{
			ID: t.ID, Worker: w.idx, State: state,
			RecordsProcessed: t.Stats.Processed, RecordsPerSecond: h.rate(now, t.Stats.Processed),
			ProcessingTime: t.Stats.ProcTime, Buffered: t.TotalBuffered(), StreamTime: t.StreamTime,
		})
		for i, n := range t.Sub.Nodes {
			s := t.Nodes[i]
			m := nodes[n.Name]
			if m == nil {
				m = &engine.NodeMetrics{Name: n.Name, Subtopology: t.Sub.ID}
				nodes[n.Name] = m
			}
			m.RecordsIn += s.In
			m.RecordsOut += s.Out
			m.ProcessingTime += t.NodeTime(i)
		}
		for _, p := range t.Partitions(now) {
			tp := topicPartition{p.Topic, p.Partition}
			pm := engine.PartitionMetrics{
				Topic: p.Topic, Partition: p.Partition, Task: t.ID, Worker: w.idx,
				Lag: p.Lag, Buffered: p.Buffered, LatencyP50: p.LatencyP50, LatencyP99: p.LatencyP99,
				Paused: w.Paused[tp],
			}
			if ps := ws.pauses[tp]; ps != nil {
				pm.Pauses, pm.PausedTime = ps.pauses, ps.paused
				if !ps.pausedAt.IsZero() {
					pm.PausedTime += now.Sub(ps.pausedAt)
				}
				pm.Thrashing = ps.thrashingAt(now)
				if pm.Thrashing && !ps.thrashing {
					w.Logger.Warn("kstream: input partition thrashing: paused and resumed more than the bound within the rate window; this instance cannot keep up with its input",
						"topic", p.Topic, "partition", p.Partition, "bound", thrashBound, "window", engine.RateWindow, "pauses", ps.pauses)
				}
				ps.thrashing = pm.Thrashing
			}
			d.partitions = append(d.partitions, pm)
		}
	}
	for name, m := range nodes {
		h := ws.nodes[name]
		if h == nil {
			h = new([2]history)
			ws.nodes[name] = h
		}
		h[0].add(now, m.RecordsIn)
		h[1].add(now, int64(m.ProcessingTime))
		m.RecordsPerSecond = h[0].rate(now, m.RecordsIn)
		m.Utilization = h[1].share(now, m.ProcessingTime)
		d.nodes = append(d.nodes, *m)
	}
	sortNodes(d.nodes)

	ws.processedH.add(now, processed)
	ws.busyH.add(now, int64(ws.busy))
	ws.commitsH.add(now, ws.commits)
	ws.commitTimeH.add(now, int64(ws.commitTime))
	u := ws.busyH.share(now, ws.busy)
	wm := engine.WorkerMetrics{
		Worker: w.idx, Tasks: len(w.Order), RecordsProcessed: processed,
		RecordsPerSecond: ws.processedH.rate(now, processed),
		BusyTime:         ws.busy, Utilization: u, Headroom: 1 - u,
		Commits: ws.commits, CommitLatencyMax: ws.commitMax, Rebalances: ws.rebalances,
	}
	if n, _ := ws.commitsH.delta(now, ws.commits); n > 0 {
		ct, _ := ws.commitTimeH.delta(now, int64(ws.commitTime))
		wm.CommitLatency = time.Duration(ct / n)
	}
	d.worker = wm

	if now.Sub(ws.storesRead) >= storeStatsInterval || len(ws.stores) != storeCount(w.Order) {
		ws.storesRead = now
		ws.stores = storeMetrics(w.Order)
	}
	d.stores = ws.stores
	d.restores = w.restore.metricsLocked(now)
	return d
}

// storeCount returns the number of stores of tasks.
func storeCount(tasks []*task) int {
	n := 0
	for _, t := range tasks {
		n += len(t.StateStores)
	}
	return n
}

// storeMetrics reads the sizes of the stores of tasks from their engines.
func storeMetrics(tasks []*task) []engine.StoreMetrics {
	var out []engine.StoreMetrics
	for _, t := range tasks {
		for _, ts := range t.StateStores {
			out = append(out, StoreSize(t.ID, ts.Spec.Name, ts.Engine))
		}
	}
	return out
}

// StoreSize returns the engine's estimates of the size of store st.
func StoreSize(id engine.TaskID, name string, st state.Store) engine.StoreMetrics {
	m := engine.StoreMetrics{Name: name, Task: id, ApproxBytes: -1, ApproxKeys: st.ApproximateCount()}
	if s, ok := st.(state.Sizer); ok {
		m.ApproxBytes = s.ApproximateBytes()
	}
	return m
}

func sortNodes(ns []engine.NodeMetrics) {
	slices.SortFunc(ns, func(a, b engine.NodeMetrics) int {
		return cmp.Or(cmp.Compare(a.Subtopology, b.Subtopology), cmp.Compare(a.Name, b.Name))
	})
}

// mergeNodes sums the nodes of several workers by name.
func mergeNodes(ns []engine.NodeMetrics) []engine.NodeMetrics {
	sortNodes(ns)
	out := ns[:0]
	for _, n := range ns {
		if k := len(out) - 1; k >= 0 && out[k].Name == n.Name {
			o := &out[k]
			o.RecordsIn += n.RecordsIn
			o.RecordsOut += n.RecordsOut
			o.RecordsPerSecond += n.RecordsPerSecond
			o.ProcessingTime += n.ProcessingTime
			o.Utilization += n.Utilization
			continue
		}
		out = append(out, n)
	}
	return out
}

// sortSections sorts the detailed sections of m by identity, and sums the
// nodes of several workers.
func sortSections(m *engine.Metrics) {
	slices.SortFunc(m.Workers, func(a, b engine.WorkerMetrics) int { return cmp.Compare(a.Worker, b.Worker) })
	slices.SortFunc(m.TaskStats, func(a, b engine.TaskMetrics) int { return engine.CompareTaskIDs(a.ID, b.ID) })
	m.Nodes = mergeNodes(m.Nodes)
	slices.SortFunc(m.Partitions, func(a, b engine.PartitionMetrics) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	slices.SortFunc(m.Stores, func(a, b engine.StoreMetrics) int {
		return cmp.Or(engine.CompareTaskIDs(a.Task, b.Task), cmp.Compare(a.Name, b.Name))
	})
	slices.SortFunc(m.Restores, func(a, b engine.RestoreMetrics) int {
		return cmp.Or(engine.CompareTaskIDs(a.Task, b.Task), cmp.Compare(a.Store, b.Store))
	})
}

// Metrics returns the driver's counters and the detailed sections that
// make sense without a broker: tasks, nodes, partitions and stores.
// Partition latencies are measured against the driver's wall clock. Rates
// and utilizations are 0: the driver's clock is not the time it works.
func (d *TestDriver) Metrics() any {
	m := d.Env.Counters.Snapshot()
	m.Time = d.clock
	m.Lag = make(map[string]map[int32]int64)
	for _, st := range d.Topo.Subs {
		t := d.tasks[st]
		if t == nil {
			continue
		}
		m.Tasks = append(m.Tasks, t.ID)
		m.TaskStats = append(m.TaskStats, engine.TaskMetrics{
			ID: t.ID, State: "running", RecordsProcessed: t.Stats.Processed, ProcessingTime: t.Stats.ProcTime,
			Buffered: t.TotalBuffered(), StreamTime: t.StreamTime,
		})
		for i, n := range st.Nodes {
			s := t.Nodes[i]
			m.Nodes = append(m.Nodes, engine.NodeMetrics{Name: n.Name, Subtopology: st.ID,
				RecordsIn: s.In, RecordsOut: s.Out, ProcessingTime: t.NodeTime(i)})
		}
		for _, p := range t.Partitions(d.clock) {
			m.Partitions = append(m.Partitions, engine.PartitionMetrics{Topic: p.Topic, Partition: p.Partition, Task: t.ID,
				Lag: p.Lag, Buffered: p.Buffered, LatencyP50: p.LatencyP50, LatencyP99: p.LatencyP99})
			if p.Lag >= 0 {
				if m.Lag[p.Topic] == nil {
					m.Lag[p.Topic] = make(map[int32]int64)
				}
				m.Lag[p.Topic][p.Partition] = p.Lag
			}
		}
		m.Stores = append(m.Stores, storeMetrics([]*task{t})...)
	}
	slices.SortFunc(m.Tasks, engine.CompareTaskIDs)
	sortSections(&m)
	return m
}
