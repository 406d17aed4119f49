package kafkatest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestUniqueNameIsLegalAndUnique(t *testing.T) {
	legal := regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)
	seen := map[string]bool{}
	for range 100 {
		name := UniqueName(t, "orders/v1 é")
		if !legal.MatchString(name) {
			t.Fatalf("UniqueName = %q, has characters Kafka does not allow", name)
		}
		if !strings.HasPrefix(name, "orders-v1---TestUniqueNameIsLegalAndUnique-") {
			t.Fatalf("UniqueName = %q, want the prefix and the test's name first", name)
		}
		if seen[name] {
			t.Fatalf("UniqueName returned %q twice", name)
		}
		seen[name] = true
	}
}

func TestUniqueNameStaysShortForLongTestNames(t *testing.T) {
	t.Run(strings.Repeat("long/", 100), func(t *testing.T) {
		if name := UniqueName(t, "p"); len(name) > 200 {
			t.Fatalf("UniqueName is %d characters long, want at most 200 (Kafka allows 249)", len(name))
		}
	})
}

func TestVersionFromGuess(t *testing.T) {
	for guess, want := range map[string]string{
		"v4.1":                                 "4.1",
		"at least v4.4":                        "at least 4.4",
		"between v3.9 and v4.0":                "between 3.9 and 4.0",
		"unknown custom version":               "unknown",
		"unknown custom version at least v4.0": "unknown custom version at least 4.0",
		"not even v0.8.0":                      "unknown",
	} {
		if got := versionFromGuess(guess); got != want {
			t.Errorf("versionFromGuess(%q) = %q, want %q", guess, got, want)
		}
	}
}

func TestServerPropertiesConfigureTransactionsOnOneNode(t *testing.T) {
	props := serverProperties("/data", 9092, 9093)
	for _, want := range []string{
		"process.roles=broker,controller",
		"node.id=1",
		"controller.quorum.bootstrap.servers=127.0.0.1:9093",
		"listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
		"advertised.listeners=PLAINTEXT://127.0.0.1:9092",
		"log.dirs=/data/logs",
		"offsets.topic.replication.factor=1",
		"transaction.state.log.replication.factor=1",
		"transaction.state.log.min.isr=1",
		"share.coordinator.state.topic.replication.factor=1",
		"min.insync.replicas=1",
		"group.initial.rebalance.delay.ms=0",
		"num.partitions=1",
		"auto.create.topics.enable=false",
	} {
		if !strings.Contains("\n"+props, "\n"+want+"\n") {
			t.Errorf("server.properties lacks %q:\n%s", want, props)
		}
	}
}

func TestNewClusterIDIsKafkaUUID(t *testing.T) {
	// One id in 64 would start with '-' if drawn naively: 2,000 draws
	// see that case with certainty for all practical purposes.
	for range 2000 {
		id, err := newClusterID()
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_-]{21}$`).MatchString(id) {
			t.Fatalf("cluster ID %q is not 16 bytes of unpadded base64url not starting with '-'", id)
		}
	}
}

func TestFreePortsAreDistinct(t *testing.T) {
	ports, err := freePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	if len(ports) != 2 || ports[0] == ports[1] {
		t.Fatalf("freePorts(2) = %v, want two distinct ports", ports)
	}
}

// deadPID returns the PID of a process that has exited and been reaped.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func TestRemoveStaleDataDirsKeepsLiveOnes(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	mk := func(name string, owner int) string {
		dir := filepath.Join(os.TempDir(), dataDirPrefix+name)
		if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
			t.Fatal(err)
		}
		if owner > 0 {
			if err := writePID(filepath.Join(dir, ownerPIDFile), owner); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	deadOwner := mk("dead", deadPID(t))
	liveOwner := mk("live", os.Getpid())
	noOwnerYet := mk("new", 0)
	unrelated := filepath.Join(os.TempDir(), "other-dir")
	if err := os.Mkdir(unrelated, 0o755); err != nil {
		t.Fatal(err)
	}

	removeStaleDataDirs()

	for dir, wantKept := range map[string]bool{deadOwner: false, liveOwner: true, noOwnerYet: true, unrelated: true} {
		_, err := os.Stat(dir)
		if kept := err == nil; kept != wantKept {
			t.Errorf("%s kept = %v, want %v", filepath.Base(dir), kept, wantKept)
		}
	}
}

func TestProcessStopEscalatesToKill(t *testing.T) {
	// The child ignores SIGTERM (sleep inherits the ignored signal), so
	// stop must fall back to SIGKILL.
	cmd := exec.Command("sh", "-c", `trap "" TERM; echo ready; exec sleep 600`)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p, err := startProcess(cmd)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6) // wait until the trap is installed
	if _, err := stdout.Read(buf); err != nil {
		t.Fatal(err)
	}
	p.stop(100 * time.Millisecond)
	select {
	case <-p.exited:
	default:
		t.Fatal("stop returned before the child exited")
	}
	if alive(p.pid()) {
		t.Fatalf("child %d is still alive after stop", p.pid())
	}
}

func TestRunProcessKillsOnContextEnd(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := runProcess(ctx, exec.Command("sh", "-c", "exec cat"))
	if err == nil {
		t.Fatal("runProcess with an ended context returned no error")
	}
}

func TestLifetimeUndoesNewestFirstAndRefusesAfterShutdown(t *testing.T) {
	l := newLifetime()
	var order []string
	first, ok1 := l.onShutdown(func() { order = append(order, "first") })
	_, ok2 := l.onShutdown(func() { order = append(order, "second") })
	if !ok1 || !ok2 {
		t.Fatal("onShutdown refused before shutdown")
	}
	l.shutdown()
	first() // already ran: must not run again
	if got := strings.Join(order, ","); got != "second,first" {
		t.Fatalf("shutdown ran %q, want second,first once each", got)
	}
	if l.ctx.Err() == nil {
		t.Fatal("shutdown left the lifetime context alive")
	}
	ran := false
	if _, ok := l.onShutdown(func() { ran = true }); ok || !ran {
		t.Fatalf("onShutdown after shutdown: ok=%v ran=%v, want false and run at once", ok, ran)
	}
}

func TestWritePIDRoundTrips(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.pid")
	if err := writePID(path, 4242); err != nil {
		t.Fatal(err)
	}
	if pid, ok := readPID(path); !ok || pid != 4242 {
		t.Fatalf("readPID = %d, %v; want 4242, true", pid, ok)
	}
	if _, ok := readPID(path + strconv.Itoa(1)); ok {
		t.Fatal("readPID of a missing file reported a PID")
	}
}
