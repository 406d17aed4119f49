package runtime

import (
	"slices"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
)

// countShed counts one record of topic's partition dropped by load
// shedding (engine.TaskEnv.OnShed). It runs on the worker goroutine, under
// mu; the stats mutex is a leaf lock.
func (w *worker) countShed(topic string, partition int32) {
	w.stats.Lock()
	defer w.stats.Unlock()
	if w.stats.shed == nil {
		w.stats.shed = make(map[topicPartition]int64)
	}
	w.stats.shed[topicPartition{topic, partition}]++
}

// ShedCounts returns, per input partition, the records load shedding
// dropped in this worker since it started. Safe from any goroutine.
func (w *worker) ShedCounts() map[topicPartition]int64 {
	w.stats.Lock()
	defer w.stats.Unlock()
	out := make(map[topicPartition]int64, len(w.stats.shed))
	for tp, n := range w.stats.shed {
		out[tp] = n
	}
	return out
}

// addShedPartitions adds the workers' per-partition shed counts to
// m.Partitions: into the entry of the partition when there is one, else in
// a new entry (lag unknown) for the worker that dropped them; entries are
// sorted by topic and partition.
func (a *App) addShedPartitions(m *engine.Metrics, ws []*worker) {
	added := false
	for _, w := range ws {
		for tp, n := range w.ShedCounts() {
			i := slices.IndexFunc(m.Partitions, func(p engine.PartitionMetrics) bool {
				return p.Topic == tp.Topic && p.Partition == tp.partition
			})
			if i < 0 {
				pm := engine.PartitionMetrics{Topic: tp.Topic, Partition: tp.partition, Worker: w.idx, Lag: -1}
				if st := a.Topo.SubtopologyFor(a.cfg.AppID, tp.Topic); st != nil {
					pm.Task = engine.TaskID{Subtopology: st.ID, Partition: tp.partition}
				}
				m.Partitions = append(m.Partitions, pm)
				i = len(m.Partitions) - 1
				added = true
			}
			m.Partitions[i].Shed += n
		}
	}
	if added {
		slices.SortFunc(m.Partitions, func(x, y engine.PartitionMetrics) int {
			if x.Topic != y.Topic {
				if x.Topic < y.Topic {
					return -1
				}
				return 1
			}
			return int(x.Partition - y.Partition)
		})
	}
}
