package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// lockFileName is the name of the lock file lockDir creates in a state
// directory.
const lockFileName = ".lock"

// lockDir takes an exclusive, non-blocking lock on dir (creating dir if
// needed) through the file <dir>/.lock, so that two App instances never use
// the same state directory. If another process, or another lockDir call in
// this process, holds the lock, it fails at once with an error wrapping
// engine.ErrStateDirLocked.
//
// The lock is an advisory flock(2) on Unix and LockFileEx on Windows; the
// operating system drops it when the process exits, so a crashed instance
// leaves no stale lock. unlock releases it and is idempotent; the lock file
// stays (deleting it would race with the next locker).
func lockDir(dir string) (unlock func() error, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("kstream: lock %s: %w", dir, err)
	}
	path := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("kstream: lock %s: %w", dir, err)
	}
	if err := lockFile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("kstream: lock %s: %w", dir, err)
	}
	var once sync.Once
	return func() error {
		var err error
		once.Do(func() {
			err = unlockFile(f)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				err = fmt.Errorf("kstream: unlock %s: %w", dir, err)
			}
		})
		return err
	}, nil
}
