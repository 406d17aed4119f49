// Package harness runs the tutorial's steps: it creates their topics, writes
// their input, runs an App until it has processed all of it, and reads the
// output topics back. The steps' own files hold what the tutorial teaches
// (the topology and the App's options); this package holds the rest.
package harness
