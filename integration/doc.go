// Package integration holds streamwork's tests against a real Apache Kafka
// broker. It has no code of its own: its tests start (or find) the broker
// through package kafkatest, which tells where the broker comes from and
// how to opt out.
//
// These tests prove what the exactly-once machinery relies on from the
// broker: a transaction's records become visible to read_committed
// consumers only when it commits, and an aborted transaction's records,
// although written, never do.
package integration
