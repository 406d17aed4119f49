package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/streamwork-go/streamwork/kstream"
)

func runReset(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("reset", "-brokers host:port[,...] -app ID [-input t1,t2] [-to-time RFC3339] [-state-dir DIR] [-dry-run]", stderr)
	brokers := fs.String("brokers", "", "comma-separated bootstrap brokers")
	app := fs.String("app", "", "the application id")
	inputs := fs.String("input", "", "comma-separated input topics whose committed offsets are reset")
	toTime := fs.String("to-time", "", "reset to the first offset at or after this time (RFC 3339); default: the log start")
	stateDir := fs.String("state-dir", "", "the state directory whose local state of the application is removed")
	dryRun := fs.Bool("dry-run", false, "print what would be done, and do nothing")
	timeout := fs.Duration("timeout", defaultTimeout, "how long to wait for Kafka")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if *brokers == "" || *app == "" {
		return usageError(fs, "-brokers and -app are required")
	}
	opts := kstream.ResetOptions{Inputs: splitList(*inputs), StateDir: *stateDir, DryRun: *dryRun}
	if *toTime != "" {
		t, err := time.Parse(time.RFC3339Nano, *toTime)
		if err != nil {
			return usageError(fs, "-to-time: %v", err)
		}
		opts.ToTime = t
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	adm, err := newAdmin(*brokers)
	if err != nil {
		return fail(stderr, "reset", err)
	}
	defer adm.Close()
	res, err := kstream.ResetApplication(ctx, adm, *app, opts)
	if err != nil {
		return fail(stderr, "reset", err)
	}
	fmt.Fprint(stdout, res)
	return exitOK
}
