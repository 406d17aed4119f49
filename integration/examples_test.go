package integration

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/streamwork-go/streamwork/integration/kafkatest"
)

// exampleBuildTimeout bounds the build of an example's binary, which on a
// loaded machine with -race can take a good part of a minute; it is not
// counted in the run's testTimeout.
const exampleBuildTimeout = 5 * time.Minute

// buildExample builds examples/<name> into a temporary directory of t and
// returns its path; with -race when the tests are.
func buildExample(t *testing.T, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), exampleBuildTimeout)
	defer cancel()
	bin := filepath.Join(t.TempDir(), name)
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "github.com/streamwork-go/streamwork/examples/"+name)
	if out, err := exec.CommandContext(ctx, "go", args...).CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin
}

// runExample runs an example's binary against the broker and returns its
// standard output; its standard error is logged if it fails. When ctx ends
// first the binary gets SIGQUIT, so that its standard error shows where
// each of its goroutines was (the Go runtime's dump), and SIGKILL 10 s
// later.
func runExample(ctx context.Context, t *testing.T, bin string, b *kafkatest.Broker, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, append([]string{"-brokers", strings.Join(b.Addrs, ",")}, args...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGQUIT) }
	cmd.WaitDelay = 10 * time.Second
	began := time.Now()
	if err := cmd.Run(); err != nil {
		errOut := tailString(stderr.String(), 60)
		if ctx.Err() != nil {
			errOut = stderr.String() // the goroutine dump, whole
		}
		t.Fatalf("%s %v after %v: %v\nstdout:\n%s\nstderr:\n%s", filepath.Base(bin), args, time.Since(began).Round(time.Millisecond), err, stdout.String(), errOut)
	}
	t.Logf("%s %v ran in %v", filepath.Base(bin), args, time.Since(began).Round(time.Millisecond))
	return stdout.String()
}

func tailString(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func readGolden(t *testing.T, example string) string {
	t.Helper()
	g, err := os.ReadFile(filepath.Join("..", "examples", example, "testdata", "default.golden"))
	if err != nil {
		t.Fatal(err)
	}
	return string(g)
}

// The toll-booth example on the real broker prints what it prints on the
// embedded one (its golden file), but for the normalise tasks' counts,
// which depend on which worker owns which read task: those must share the
// 240 events.
func TestTollboothExampleOnRealBroker(t *testing.T) {
	b := kafkatest.Require(t)
	bin := buildExample(t, "tollbooth")
	out := runExample(testContext(t), t, bin, b)
	shuffle := regexp.MustCompile(`(?m)^(  task 1_\d +)(\d+)( events)$`)
	sum := 0
	for _, m := range shuffle.FindAllStringSubmatch(out, -1) {
		n := 0
		for _, c := range m[2] {
			n = n*10 + int(c-'0')
		}
		sum += n
	}
	if sum != 240 {
		t.Errorf("the normalise tasks handled %d events, want 240", sum)
	}
	masked := shuffle.ReplaceAllString(out, "${1}N${3}")
	masked = regexp.MustCompile(`(?m)^(  task 1_\d) +N events$`).ReplaceAllString(masked, "$1    N events")
	if want := readGolden(t, "tollbooth"); masked != want {
		t.Fatalf("output:\n%s\nwant (normalise counts masked):\n%s", out, want)
	}
}

// The fraud-detection DAG on the real broker prints what it prints on the
// embedded one (its golden file): the same alerts with the same verdicts
// and totals. The run itself fails unless every transaction was scored
// once with a verdict of each analyzer.
func TestFraudDetectionExampleOnRealBroker(t *testing.T) {
	b := kafkatest.Require(t)
	bin := buildExample(t, "frauddetection")
	if out, want := runExample(testContext(t), t, bin, b), readGolden(t, "frauddetection"); out != want {
		t.Fatalf("output:\n%s\nwant:\n%s", out, want)
	}
}

// The usage counter on the real broker: with no crash its output is the
// embedded run's (its golden file); through the crash demo (separate
// processes killed with SIGKILL), exactly-once loses and doubles nothing
// and its totals are exact, at-least-once loses nothing, at-most-once
// doubles nothing.
func TestSystemUsageExampleOnRealBroker(t *testing.T) {
	b := kafkatest.Require(t)
	bin := buildExample(t, "systemusage")
	ctx := testContext(t)
	if out, want := runExample(ctx, t, bin, b), readGolden(t, "systemusage"); out != want {
		t.Fatalf("output:\n%s\nwant:\n%s", out, want)
	}

	out := runExample(ctx, t, bin, b, "-demo-crash")
	t.Logf("crash demo:\n%s", out)
	row := regexp.MustCompile(`(?m)^  (at-most-once|at-least-once|exactly-once) +(\d+) +(\d+) +(\d+)  (.*)$`)
	rows := map[string][]string{}
	for _, m := range row.FindAllStringSubmatch(out, -1) {
		rows[m[1]] = m[2:]
	}
	if len(rows) != 3 {
		t.Fatalf("the crash demo printed %d rows of outcomes, want 3:\n%s", len(rows), out)
	}
	if r := rows["exactly-once"]; r[0] != "3000" || r[1] != "0" || r[2] != "0" || r[3] != "exact" {
		t.Errorf("exactly-once: %v, want 3000 deltas, 0 lost, 0 counted twice, exact totals", r)
	}
	if r := rows["at-least-once"]; r[1] != "0" {
		t.Errorf("at-least-once lost %s events", r[1])
	}
	if r := rows["at-most-once"]; r[2] != "0" {
		t.Errorf("at-most-once counted %s events twice", r[2])
	}
}
