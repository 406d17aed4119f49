// Package kstreamtest runs a kstream topology in process, with no broker,
// synchronously and with a controlled wall clock: the unit-test companion of
// kstream, as net/http/httptest is of net/http.
//
// The driver runs the very same task code as kstream.App: sources decode with
// the topology's serdes, records flow depth first through the nodes,
// punctuators fire on stream time and on the driver's wall clock, and error
// handlers decide about failed records. It differs from a running App in
// what Kafka would do: every topic has one partition (so there is one task
// per sub-topology), nothing is committed, and a record the topology writes
// to a topic it also reads is fed back into it at once.
//
//	d, err := kstreamtest.New(topology)
//	in := kstreamtest.Input(d, "words", serde.String, serde.String)
//	out := kstreamtest.Output(d, "counts", serde.String, serde.Int64)
//	in.Pipe("k", "hello", time.UnixMilli(1000))
//	got := out.KeyValues() // what "counts" received, in order
package kstreamtest
