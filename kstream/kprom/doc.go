// Package kprom exposes a kstream App's metrics to Prometheus.
//
// NewCollector returns a prometheus.Collector that reads App.Metrics on
// every scrape and turns the snapshot into metrics with conventional
// names: the streamwork_ prefix, _total for counters, _seconds for times,
// _ratio for shares in [0, 1], and the labels application_id, worker,
// task, node, topic, partition and store. Register it with any
// prometheus.Registerer and serve the registry with promhttp (see the
// example).
//
// The package is a module of its own, so that the library itself never
// depends on the Prometheus client.
//
// # Other systems
//
// Everything the collector exports comes from one call, App.Metrics,
// which any goroutine may make at any time: it returns a kstream.Metrics
// value (App-wide counters, then the Workers, TaskStats, Nodes,
// Partitions, Stores and Restores sections, each sorted by identity) and
// costs a few small allocations, no I/O. To feed OpenTelemetry, register
// observable instruments whose callback calls App.Metrics once and
// records each field with the same attributes this package uses as
// labels (an Int64ObservableCounter for the counters, a Float64Observable
// Gauge for rates, ratios and latencies); for StatsD, expvar or a log
// line, call App.Metrics on a ticker. Counters are totals since the App
// started (node, task and partition counters since the task started on
// this instance); rates, utilizations and latency percentiles cover the
// last kstream.RateWindow.
package kprom
