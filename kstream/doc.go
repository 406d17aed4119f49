// Package kstream is Streamwork's stream-processing DSL, processor API and
// runtime: build a topology of sources, operators and sinks, then run it
// with an App against Kafka.
//
// # Building a topology
//
// A Builder collects streams. From reads a topic with a key and a value
// serde; operators that keep the record type are methods of Stream (Filter,
// FilterNot, Peek, Foreach, Merge, Split, To, ToDynamic), operators that
// change it are functions (Map, MapValues, MapValuesWithKey, FlatMap,
// FlatMapValues, SelectKey, Process), because Go methods cannot add type
// parameters. Build checks the graph and returns an immutable Topology:
//
//	b := kstream.NewBuilder()
//	orders := kstream.From(b, "orders", serde.String, serde.JSON[Order]())
//	big := orders.Filter(func(_ string, o Order) bool { return o.Total > 100 })
//	kstream.MapValues(big, func(o Order) string { return o.Customer }).
//		To("big-order-customers", serde.String, serde.String)
//	topo, err := b.Build()
//
// Records flow depth first: when an operator forwards a record, the whole
// downstream graph processes it before the operator sees the next one. Output
// records keep the timestamp and headers of the input record they came from.
// Unnamed operators get generated names (KSTREAM-FILTER-0000000001 and so
// on, numbered in call order); Named sets one. Topology.Describe prints the
// graph as text or Mermaid.
//
// # Tasks and sub-topologies
//
// The graph splits into sub-topologies: the connected parts of it. A task
// runs one sub-topology for one partition number of its source topics; tasks
// are the unit of parallelism and assignment. A task processes the records
// of its partitions in timestamp order across partitions, as far as it has
// records of each; for an empty partition it waits as MaxTaskIdle says.
// Stream time, per task, is the largest record timestamp it has processed.
//
// # The processor API
//
// Process runs a user Processor: Init receives a ProcessorContext that
// forwards to all or to named children, tells the current record's topic,
// partition and offset, and schedules punctuators on stream time or wall
// clock time.
//
// # Running
//
// New(topology, options...) makes an App; App.Run(ctx) joins the consumer
// group named by the application id, processes until ctx is cancelled, then
// commits and leaves. Options select the brokers, the number of workers, the
// commit interval, the delivery guarantee (AtLeastOnce, AtMostOnce, or
// ExactlyOnce: each worker's outputs, state changes and input offsets
// committed in one Kafka transaction per commit interval) and the
// error handlers for records that cannot be decoded, processed or written:
// LogAndFail (the default), LogAndSkip, or LogAndDeadLetter(topic), or a
// function of the user's returning Fail, Skip or DeadLetter(topic). Every skipped
// or dead-lettered record is counted in Metrics and logged.
//
// # State
//
// Stateful operators keep their state in stores, one instance per task: on
// disk in Pebble under StateDir (the default; StoreEngine(MemoryEngine) or
// InMemory keep it in memory), with every change also written to a
// compacted changelog topic, "<application id>-<store>-changelog", that Run
// creates. A task that starts on an instance restores its stores from
// their changelogs before it processes — only what its checkpoint file
// lacks, when the instance had the task before. A record cache
// (CacheMaxBytes) merges the updates of a key between commits. Processors
// get stores with AddStore, UseStores and StoreOf; QueryStore reads the
// local stores of a running App (interactive queries). Metrics reports
// restores.
//
// Package kstreamtest runs a topology in process with no broker, for unit
// tests.
package kstream
