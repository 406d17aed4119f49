package runtime

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// RemoveAppState removes the local state of application appID under
// stateDir (its stores, checkpoints and instance id), after taking the
// directory's lock, so it fails with an error wrapping
// engine.ErrStateDirLocked while an instance of the application uses it.
// The lock file stays (see lockDir). It returns the application's
// directory, or "" when there was none. With dryRun it removes nothing but
// still checks the lock.
func RemoveAppState(stateDir, appID string, dryRun bool) (string, error) {
	dir := filepath.Join(stateDir, appID)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return "", nil
	} else if err != nil {
		return "", fmt.Errorf("kstream: state directory of application %q: %w", appID, err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return "", fmt.Errorf("kstream: state directory of application %q: %w", appID, err)
	}
	defer func() { _ = unlock() }()
	if dryRun {
		return dir, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("kstream: state directory of application %q: %w", appID, err)
	}
	for _, e := range entries {
		if e.Name() == lockFileName {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return "", fmt.Errorf("kstream: remove state of application %q: %w", appID, err)
		}
	}
	return dir, nil
}
