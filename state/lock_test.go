package state_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/streamwork-go/streamwork/state"
)

func TestLockDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "app") // LockDir creates it
	unlock, err := state.LockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, state.LockFileName)); err != nil {
		t.Fatalf("lock file: %v", err)
	}
	// A second lock, on another file descriptor of this process, fails
	// fast.
	if _, err := state.LockDir(dir); !errors.Is(err, state.ErrLocked) {
		t.Fatalf("second LockDir: err = %v, want ErrLocked", err)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	if err := unlock(); err != nil {
		t.Fatalf("second unlock: %v", err)
	}
	unlock2, err := state.LockDir(dir)
	if err != nil {
		t.Fatalf("LockDir after unlock: %v", err)
	}
	if err := unlock2(); err != nil {
		t.Fatal(err)
	}
}

func TestLockDirUnwritable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := state.LockDir(filepath.Join(file, "sub")); err == nil || errors.Is(err, state.ErrLocked) {
		t.Fatalf("LockDir under a regular file: err = %v", err)
	}
}
