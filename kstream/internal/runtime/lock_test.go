package runtime

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
)

func TestLockDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "app") // lockDir creates it
	unlock, err := lockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, lockFileName)); err != nil {
		t.Fatalf("lock file: %v", err)
	}
	// A second lock, on another file descriptor of this process, fails
	// fast.
	if _, err := lockDir(dir); !errors.Is(err, engine.ErrStateDirLocked) {
		t.Fatalf("second lockDir: err = %v, want engine.ErrStateDirLocked", err)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	if err := unlock(); err != nil {
		t.Fatalf("second unlock: %v", err)
	}
	unlock2, err := lockDir(dir)
	if err != nil {
		t.Fatalf("lockDir after unlock: %v", err)
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
	if _, err := lockDir(filepath.Join(file, "sub")); err == nil || errors.Is(err, engine.ErrStateDirLocked) {
		t.Fatalf("lockDir under a regular file: err = %v", err)
	}
}
