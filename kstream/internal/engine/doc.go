// Package engine is what the DSL's nodes are written against: the graph a
// Builder collects and Build splits into sub-topologies (Graph, Node,
// Topology, Subtopology); the task that runs one sub-topology for one
// partition (Task: its per-partition queues, timestamp order, stream time,
// failures and their handlers, punctuation); the interfaces a node
// implements and uses (Instance, Receiver, Downstream) and the source and
// sink nodes; and each task's store stack (the record cache, the
// changelogging store, the engine store).
//
// A node of the DSL is an Instance made per task by its Node's
// NewInstance; Init wires it to its Task and children, typed: a parent's
// Downstream[K, V] asserts its children to Receiver[K, V] once, so records
// move between nodes without boxing. Everything here runs on the goroutine
// of the worker (or test driver) that owns the task; the runtime
// (kstream/internal/runtime) feeds tasks records and commits their
// progress.
package engine
