package kstream

import (
	"fmt"
	"time"

	"github.com/streamwork-go/streamwork/kstream/internal/runtime"
	"github.com/streamwork-go/streamwork/kstream/internal/testhook"
)

func init() {
	testhook.NewDriver = newTestDriver
}

// newTestDriver is the engine side of kstreamtest.New: the options are
// applied as New applies them, over an application id and brokers that the
// in-process driver does not use.
func newTestDriver(topology any, start time.Time, opts []any) (testhook.Driver, error) {
	t, ok := topology.(*Topology)
	if !ok || t == nil || t.t == nil {
		return nil, fmt.Errorf("%w: the test driver needs a *kstream.Topology, got %T", ErrConfig, topology)
	}
	cfg := runtime.DefaultConfig()
	cfg.AppID = "kstreamtest"
	cfg.Brokers = []string{"in-process"}
	for _, o := range opts {
		opt, ok := o.(Opt)
		if !ok {
			return nil, fmt.Errorf("%w: %T is not a kstream.Opt", ErrConfig, o)
		}
		if opt != nil {
			opt.apply(&cfg)
		}
	}
	d, err := runtime.NewTestDriver(t.t, start, cfg)
	if err != nil {
		return nil, err
	}
	return d, nil
}
