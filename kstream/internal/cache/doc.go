// Package cache is the record cache: a write-back buffer of dirty keys in
// front of a task's store, shared under one memory budget per worker (Kafka
// Streams' ThreadCache). Updates of a key between two flushes merge; a flush
// writes each dirty key through to the store (and so its changelog) and
// hands the new and old values to the listener that forwards them
// downstream.
package cache
