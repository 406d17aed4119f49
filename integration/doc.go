// Package integration holds streamwork's tests against a real Apache Kafka
// broker. Its tests start (or find) the broker through package kafkatest,
// which tells where the broker comes from and how to opt out.
//
//   - txn_test.go: what exactly-once relies on from the broker: a
//     transaction's records become visible to read_committed consumers only
//     when it commits; an aborted transaction's records never do.
//   - stateless_test.go, dag_test.go: every stateless operator, and a
//     branch/merge DAG run by two instances, with exact outputs.
//   - rebalance_test.go: a third instance joins and leaves while records
//     flow; nothing is lost under at-least-once.
//   - atmostonce_test.go, crash_test.go: a killed process (internal/crashapp)
//     never reprocesses under at-most-once and never loses under
//     at-least-once.
//   - errorhandling_test.go: a poison pill and a failing record through each
//     error handler outcome.
//   - ledger_crash_test.go: the ledger workload (internal/ledger: a
//     pass-through, a repartition, a count and a sum) run as three
//     internal/eosapp processes that are killed at random, one stopped past
//     its session timeout, and restarted: exact outputs under exactly-once
//     (nothing missing, nothing twice, counts and sums exact and never
//     repeated), nothing missing under at-least-once (duplicates reported).
//     STREAMWORK_CRASH_FULL=1 runs the full size (200,000 records, 12
//     kills); STREAMWORK_CRASH_SEED replays a run; STREAMWORK_CRASH_LOGS
//     keeps the processes' logs.
//   - bench_eos_test.go: BenchmarkEOS, the ledger workload's throughput
//     under each guarantee.
//   - ksref_test.go (no broker): the windowed aggregations against Kafka
//     Streams' own output, golden files that ksref/run makes with its
//     TopologyTestDriver: the same records, key, window, value, timestamp
//     and tombstones; and the windowed key serdes byte for byte.
//
// The test command of the repository is ./integration/run.
package integration
