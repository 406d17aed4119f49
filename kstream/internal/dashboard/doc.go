// Package dashboard serves a live dashboard of one App: a page (HTML,
// JavaScript and CSS embedded in the binary, no build step, nothing fetched
// from the network) that draws the topology as a graph with each node's
// numbers, per-partition lag, the tasks of each worker and charts of the
// last minutes, and the JSON endpoints it polls:
//
//	GET api/topology   the topology description, as given to New
//	GET api/metrics    a metrics snapshot, taken at each request
//	GET api/history    the samples of the last HistoryLen seconds
//	GET api/group      the whole group's members and tasks (Source.Group),
//	                   asked at most once per GroupTTL; 404 without Group
//
// Every path is relative, so the handler works mounted under any prefix
// (http.StripPrefix). The package does not import kstream: kstream passes
// it the description and a snapshot function.
//
// History is kept by one goroutine per Handler that samples the metrics
// once a second. It starts with the first request made while the App runs
// (Running closed, Done not) and ends when Done closes; Wait waits for it.
package dashboard
