// Command bench runs Streamwork, Kafka Streams and a raw franz-go
// consume-transform-produce loop side by side on one real Apache Kafka
// broker and writes a markdown table, its summaries as JSON and a labelled
// PNG chart of the results to bench/results/. With -chart-from
// <base>.json it only redraws the chart of earlier results.
//
//	go run ./bench -records 2000000 -rounds 3
//
// It starts a broker through integration/kafkatest (or uses -brokers),
// loads the input once, then runs each workload with each system, one run
// at a time, interleaved over rounds:
//
//   - W1: filter + map (stateless);
//   - W2: count by a re-keyed field (repartition, Pebble store, changelog);
//   - W3: one-minute tumbling windowed count over 100,000 keys, emitting
//     every update;
//   - W4: stream-table join against a 100,000-key table;
//
// each under at-least-once and exactly-once. Every run is a child process
// (this binary with -run-system, or the Java program in bench/ks), so its
// CPU time comes from its own rusage and its peak RSS from its VmHWM
// (/proc), read just before it is stopped. A read-committed
// consumer verifies each run's output exactly (counts, checksums, final
// aggregates) before the run counts.
package main
