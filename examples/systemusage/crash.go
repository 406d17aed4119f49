package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/examples/service"
	"github.com/streamwork-go/streamwork/kstream"
)

// processorFlag, first on the command line with a processorConfig in
// JSON after it, makes the program run one processing instance of the
// usage counter instead of the example: the crash demo starts it so. It
// is not among the flags -help lists.
const processorFlag = "-internal-processor"

// processorConfig is what a processing instance runs.
type processorConfig struct {
	Brokers        []string                  `json:"brokers"`
	AppID          string                    `json:"app_id"`
	Input          string                    `json:"input"`
	Output         string                    `json:"output"`
	Guarantee      kstream.DeliveryGuarantee `json:"guarantee"`
	StateDir       string                    `json:"state_dir"`
	Rate           float64                   `json:"rate"` // events per second, 0: no limit
	CommitInterval time.Duration             `json:"commit_interval"`
	SessionTimeout time.Duration             `json:"session_timeout"`
	LogLevel       slog.Level                `json:"log_level"`
}

// processorInvocation reports whether args (without the program name) ask
// for a processing instance, and its configuration.
func processorInvocation(args []string) (processorConfig, bool, error) {
	var c processorConfig
	if len(args) == 0 || args[0] != processorFlag {
		return c, false, nil
	}
	if len(args) != 2 {
		return c, true, fmt.Errorf("%s takes one argument, a JSON configuration", processorFlag)
	}
	err := json.Unmarshal([]byte(args[1]), &c)
	return c, true, err
}

// runProcessor runs one processing instance until SIGTERM or SIGINT (exit
// status 0 after a clean shutdown) or a failure (1).
func runProcessor(c processorConfig, stderr io.Writer) int {
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: c.LogLevel})).With("pid", os.Getpid())
	topo, err := Topology(c.Input, c.Output, newPacer(c.Rate))
	if err != nil {
		logger.Error("systemusage processor", "err", err)
		return 1
	}
	app, err := kstream.New(topo,
		kstream.ApplicationID(c.AppID),
		kstream.Brokers(c.Brokers...),
		kstream.Guarantee(c.Guarantee),
		kstream.CommitInterval(c.CommitInterval),
		kstream.StateDir(c.StateDir),
		kstream.Logger(logger),
		kstream.ClientOpts(kgo.SessionTimeout(c.SessionTimeout), kgo.HeartbeatInterval(c.SessionTimeout/10)),
	)
	if err != nil {
		logger.Error("systemusage processor", "err", err)
		return 1
	}
	ctx, stop := service.SignalContext()
	defer stop()
	if err := app.Run(ctx); err != nil {
		logger.Error("systemusage processor stopped", "err", err)
		return 1
	}
	return 0
}

// newPacer returns a function that spaces its calls rate a second (nil
// for no limit): the simulated cost of processing an event.
func newPacer(rate float64) func() {
	if rate <= 0 {
		return nil
	}
	every := time.Duration(float64(time.Second) / rate)
	var mu sync.Mutex
	var next time.Time
	return func() {
		mu.Lock()
		now := time.Now()
		if next.Before(now) {
			next = now
		}
		at := next
		next = next.Add(every)
		mu.Unlock()
		time.Sleep(time.Until(at)) // the simulated work
	}
}

// child is a processing instance running as a separate process.
type child struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process exited
	err    error         // Wait's result, set before exited closes
}

// startChild runs exe as a processing instance of c, its logs going to
// stderr. ctx ending kills it.
func startChild(ctx context.Context, exe string, c processorConfig, stderr io.Writer) (*child, error) {
	arg, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, exe, processorFlag, string(arg))
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start a processing instance: %w", err)
	}
	ch := &child{cmd: cmd, exited: make(chan struct{})}
	go func() {
		ch.err = cmd.Wait()
		close(ch.exited)
	}()
	return ch, nil
}

// done returns a channel that receives Wait's result when the process
// exits.
func (c *child) done() chan error {
	ch := make(chan error, 1)
	go func() {
		<-c.exited
		ch <- c.err
	}()
	return ch
}

// kill sends SIGKILL and waits until the process is gone.
func (c *child) kill() error {
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	<-c.exited
	return nil
}

// stop sends SIGTERM and waits for a clean exit.
func (c *child) stop() error {
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	<-c.exited
	if c.err != nil {
		return fmt.Errorf("processing instance after SIGTERM: %w", c.err)
	}
	return nil
}

// committed returns the sum of the group's committed offsets of topic.
func committed(ctx context.Context, adm *kadm.Client, group, topic string) (int64, error) {
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return 0, err
	}
	var sum int64
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.Err == nil {
			sum += o.At
		}
	})
	return sum, nil
}

// waitSoleOwner waits until group is stable with one member, which owns
// partitions: the killed instance has left the group (its session timed
// out) and the new one, ch, took over its work. dead holds the members
// before ch started.
func waitSoleOwner(ctx context.Context, adm *kadm.Client, group string, dead map[string]bool, ch *child) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		groups, err := adm.DescribeGroups(ctx, group)
		if g := groups[group]; err == nil && g.Err == nil && g.State == "Stable" && len(g.Members) == 1 && !dead[g.Members[0].MemberID] {
			if a, ok := g.Members[0].Assigned.AsConsumer(); ok && len(a.Topics) > 0 {
				return nil
			}
		}
		select {
		case <-ch.exited:
			return fmt.Errorf("the second processing instance exited: %v", ch.err)
		case <-ctx.Done():
			return fmt.Errorf("waiting for the second processing instance to own %s's input: %w", group, ctx.Err())
		case <-tick.C:
		}
	}
}

// crashInfo says where the first instance was killed.
type crashInfo struct {
	// Written is how many records the output held (deltas, and under
	// exactly-once transaction markers too, committed or not); Committed
	// the sum of the group's committed input offsets.
	Written, Committed int64
}

// progress returns the end offsets of topic, summed.
func progress(ctx context.Context, adm *kadm.Client, topic string) (int64, error) {
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	var sum int64
	ends.Each(func(o kadm.ListedOffset) { sum += o.Offset })
	return sum, err
}

// inFlight is how far the output and the committed input must be apart
// when the crash comes: the work a crash leaves half done (committed, not
// processed under at-most-once; processed, not committed under the
// others).
const inFlight = 50

// crashRun runs the counter under c.Guarantee through a crash: the first
// instance is killed with SIGKILL once it has written deltas for a third
// of the n input events, the group has committed some input, and the two
// are inFlight apart; then a
// second one (on the same state directory, so under exactly-once with the
// same transactional id) takes over and is stopped cleanly once the group
// committed the whole input.
func crashRun(ctx context.Context, adm *kadm.Client, exe string, c processorConfig, n int, stderr io.Writer) (crashInfo, error) {
	var info crashInfo
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	first, err := startChild(ctx, exe, c, stderr)
	if err != nil {
		return info, err
	}
	defer first.kill()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for info.Written < int64(n/3) || info.Committed == 0 || max(info.Written-info.Committed, info.Committed-info.Written) < inFlight {
		select {
		case <-first.exited:
			return info, fmt.Errorf("the first processing instance exited before the crash: %v", first.err)
		case <-ctx.Done():
			return info, fmt.Errorf("waiting for %s to write %d deltas and commit (wrote %d, committed %d): %w",
				c.AppID, n/3, info.Written, info.Committed, ctx.Err())
		case <-tick.C:
		}
		var werr, cerr error
		info.Written, werr = progress(ctx, adm, c.Output)
		info.Committed, cerr = committed(ctx, adm, c.AppID, c.Input)
		if werr != nil || cerr != nil {
			info = crashInfo{}
		}
	}
	if err := first.kill(); err != nil {
		return info, fmt.Errorf("kill the first processing instance: %w", err)
	}
	if info.Written >= int64(n) {
		return info, fmt.Errorf("the crash came after all %d events were processed: lower -rate", n)
	}

	dead := map[string]bool{}
	groups, err := adm.DescribeGroups(ctx, c.AppID)
	if err == nil {
		err = groups.Error()
	}
	if err != nil {
		return info, fmt.Errorf("describe %s: %w", c.AppID, err)
	}
	for _, m := range groups[c.AppID].Members {
		dead[m.MemberID] = true
	}
	second, err := startChild(ctx, exe, c, stderr)
	if err != nil {
		return info, err
	}
	defer second.kill()
	if err := waitSoleOwner(ctx, adm, c.AppID, dead, second); err != nil {
		return info, err
	}
	ends, err := adm.ListEndOffsets(ctx, c.Input)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return info, err
	}
	if err := service.WaitCommitted(ctx, adm, c.AppID, ends, second.done()); err != nil {
		return info, err
	}
	return info, second.stop()
}
