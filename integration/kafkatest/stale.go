package kafkatest

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// orphanAge is how old a data dir with no owner PID must be before it is
// taken for the leftover of a process killed while it was being made.
const orphanAge = time.Hour

// removeStaleDataDirs removes the jvm provider's data dirs left by test
// processes that were killed before they could clean up: those whose owner
// PID names a dead process. Should such a dir's broker still run (it
// should not: it dies with its owner), its process group is killed first.
func removeStaleDataDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dataDirPrefix+"*"))
	for _, dir := range dirs {
		if stale(dir) {
			os.RemoveAll(dir)
		}
	}
}

// stale reports whether dir was left by a dead test process, killing its
// broker if that still runs.
func stale(dir string) bool {
	owner, ok := readPID(filepath.Join(dir, ownerPIDFile))
	if !ok {
		info, err := os.Stat(dir)
		return err == nil && info.IsDir() && time.Since(info.ModTime()) > orphanAge
	}
	if alive(owner) {
		return false
	}
	if broker, ok := readPID(filepath.Join(dir, brokerPIDFile)); ok && alive(broker) && brokerOf(broker, dir) {
		_ = syscall.Kill(-broker, syscall.SIGKILL)
	}
	return true
}

// readPID reads a PID file.
func readPID(path string) (int, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid, err == nil && pid > 0
}

// alive reports whether a process with this PID exists.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// brokerOf reports whether pid is a Kafka broker started from dir, so that
// a reused PID is never killed.
func brokerOf(pid int, dir string) bool {
	cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	return err == nil && bytes.Contains(cmdline, []byte("kafka.Kafka")) && bytes.Contains(cmdline, []byte(dir))
}
