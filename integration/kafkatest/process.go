package kafkatest

import (
	"bytes"
	"context"
	"os/exec"
	"runtime"
	"syscall"
	"time"
)

// process is a child process in its own process group that dies with us.
//
// Pdeathsig fires when the thread that started the child exits, not the
// process, so the child is started from a goroutine locked to its OS thread
// and kept there until the child exits: the thread outlives the child. Its
// own process group keeps a terminal's Ctrl-C from reaching the broker
// before Main's handler can stop it in order.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once the child has exited and been reaped
	err    error         // the child's exit error, set before exited closes
}

// startProcess starts cmd as a process.
func startProcess(cmd *exec.Cmd) (*process, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second
	p := &process{cmd: cmd, exited: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// Never unlocked: the thread ends with this goroutine, which
		// returns only after the child has exited.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		close(p.exited)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return p, nil
}

// pid is the child's process ID, which is also its process group ID.
func (p *process) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM to the child's process group, waits up to grace for it
// to exit, then sends SIGKILL and waits for it.
func (p *process) stop(grace time.Duration) {
	_ = syscall.Kill(-p.pid(), syscall.SIGTERM)
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-p.exited:
	case <-timer.C:
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.exited
	}
}

// runProcess runs cmd to completion as a process and returns its combined
// output. If ctx ends first, the child's process group is killed.
func runProcess(ctx context.Context, cmd *exec.Cmd) ([]byte, error) {
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	p, err := startProcess(cmd)
	if err != nil {
		return nil, err
	}
	select {
	case <-p.exited:
		return out.Bytes(), p.err
	case <-ctx.Done():
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.exited
		return out.Bytes(), ctx.Err()
	}
}
