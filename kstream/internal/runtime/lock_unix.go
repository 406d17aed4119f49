//go:build unix

package runtime

import (
	"errors"
	"os"
	"syscall"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
)

// lockFile takes an exclusive flock on f without blocking. flock locks
// belong to the open file description, so a second open of the same file
// in this process conflicts too (unlike fcntl locks).
func lockFile(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EWOULDBLOCK):
			return engine.ErrStateDirLocked
		default:
			return err
		}
	}
}

func unlockFile(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
}
