// Package runtime runs a topology's tasks against Kafka: App.Run (the state
// directory, topic checks and internal topics, global tables, workers), the
// worker loop (one kgo client per worker: poll, route to tasks, process,
// punctuate, commit through the delivery guarantee's commit.Protocol), the
// rebalance callbacks and task lifecycle, the producer and its error
// handling, restoring stores from changelogs, checkpoints kept in the
// stores, the global updater, the state directory and its lock, the query
// registry, the group balancer's kgo side, and the synchronous test driver
// that kstreamtest uses.
//
// Goroutines, locks and the exactly-once invariants are described in the
// repository's DESIGN.md.
package runtime
