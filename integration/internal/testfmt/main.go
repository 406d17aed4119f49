// Command testfmt reads `go test -json` output on stdin and prints a compact
// report: every package's result line (as go test prints it), the full
// output of every failing or skipped test, the output of packages that fail
// outside any test, and the line each real-broker test package prints when
// its broker is ready; last, a line "tests: N passed, N failed, N skipped"
// counting tests and subtests. It exits 1 if any package or test failed, or if the
// input had no test result at all.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

func main() {
	os.Exit(run())
}

func run() int {
	buf := map[string][]string{} // package/test -> output lines
	failed, results := false, 0
	var passed, failedTests, skipped int
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil || e.Action == "" {
			fmt.Println(string(line)) // build errors and the like
			continue
		}
		key := e.Package + "\x00" + e.Test
		switch e.Action {
		case "build-output":
			fmt.Print(e.Output)
		case "build-fail":
			failed = true
		case "output":
			if strings.HasPrefix(e.Output, "integration: broker ") {
				fmt.Print(e.Output)
			}
			buf[key] = append(buf[key], e.Output)
		case "pass":
			if e.Test != "" {
				passed++
			}
			if e.Test == "" {
				results++
				printResult(buf[key])
			}
			delete(buf, key)
		case "skip":
			if e.Test != "" {
				skipped++
				fmt.Printf("--- SKIP: %s (%s)\n", e.Test, e.Package)
				printIndented(buf[key])
			} else {
				results++
				printResult(buf[key])
			}
			delete(buf, key)
		case "fail":
			failed = true
			if e.Test != "" {
				failedTests++
				fmt.Printf("--- FAIL: %s (%s)\n", e.Test, e.Package)
				printIndented(buf[key])
			} else {
				results++
				for _, l := range buf[key] {
					if !strings.HasPrefix(l, "=== ") && !strings.HasPrefix(l, "--- PASS") {
						fmt.Print(l)
					}
				}
			}
			delete(buf, key)
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "testfmt:", err)
		return 1
	}
	fmt.Printf("tests: %d passed, %d failed, %d skipped\n", passed, failedTests, skipped)
	if results == 0 {
		fmt.Fprintln(os.Stderr, "testfmt: no test results in the input")
		return 1
	}
	if failed {
		return 1
	}
	return 0
}

// printResult prints a package's closing lines ("ok  pkg 1.2s", "?  pkg [no
// test files]"), leaving out the per-test noise of -v.
func printResult(lines []string) {
	for _, l := range lines {
		if strings.HasPrefix(l, "ok ") || strings.HasPrefix(l, "?") || strings.HasPrefix(l, "FAIL") {
			fmt.Print(l)
		}
	}
}

func printIndented(lines []string) {
	for _, l := range lines {
		if strings.HasPrefix(l, "=== ") || strings.HasPrefix(l, "--- ") {
			continue
		}
		fmt.Print(l)
	}
}
