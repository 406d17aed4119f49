//go:build !unix && !windows

package runtime

import (
	"errors"
	"os"
	"runtime"
)

func lockFile(*os.File) error {
	return errors.New("directory locking is not supported on " + runtime.GOOS)
}

func unlockFile(*os.File) error { return nil }
