package kafkatest

import (
	"context"
	"sync"
)

// life tracks what this process started, so that shutdown can undo it.
// Its context is canceled by shutdown, which ends any child process (mvn,
// the storage formatter) that a start still has running.
var life = newLifetime()

type lifetime struct {
	ctx    context.Context
	cancel context.CancelFunc

	once sync.Once

	mu struct {
		sync.Mutex
		closed bool
		undo   []func()
	}
}

func newLifetime() *lifetime {
	ctx, cancel := context.WithCancel(context.Background())
	return &lifetime{ctx: ctx, cancel: cancel}
}

// onShutdown registers fn to run at shutdown and returns it wrapped so that
// it runs at most once, whoever calls it first. If shutdown already ran, fn
// runs now and ok is false: the caller must give up its start.
func (l *lifetime) onShutdown(fn func()) (once func(), ok bool) {
	once = sync.OnceFunc(fn)
	l.mu.Lock()
	if l.mu.closed {
		l.mu.Unlock()
		once()
		return once, false
	}
	l.mu.undo = append(l.mu.undo, once)
	l.mu.Unlock()
	return once, true
}

// shutdown cancels starts under way and undoes, newest first, everything
// registered. Concurrent callers wait for the first to finish.
func (l *lifetime) shutdown() {
	l.once.Do(func() {
		l.cancel()
		l.mu.Lock()
		l.mu.closed = true
		undo := l.mu.undo
		l.mu.undo = nil
		l.mu.Unlock()
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	})
}

// shutdown stops whatever this process started.
func shutdown() { life.shutdown() }
