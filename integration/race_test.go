//go:build race

package integration

// raceEnabled says whether the test binary was built with -race; programs
// the tests build are built the same way, so they reuse its build cache and
// are checked for races too.
const raceEnabled = true
