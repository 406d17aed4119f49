// Command streamwork is the operator's tool for Streamwork applications:
// describe a topology, show an application's members, tasks and lag, reset
// an application, run a development broker.
//
//	streamwork describe (-f topology.json | -url http://host:port/prefix/) [-format text|mermaid]
//	streamwork status -brokers host:port[,...] -app ID [-topology topology.json | -url ...]
//	streamwork reset -brokers host:port[,...] -app ID [-input t1,t2] [-to-time RFC3339] [-state-dir DIR] [-dry-run]
//	streamwork broker [-port N] [-data-dir DIR] [-partitions N]
//
// Every command takes -h. Exit codes: 0 done, 1 failed, 2 bad usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// command is one subcommand: run parses args (after the command name) and
// does the work, writing results to stdout and problems to stderr.
type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

var commands = []command{
	{"describe", "print a topology as text or Mermaid (from a JSON file or a running App's dashboard)", runDescribe},
	{"status", "show an application's members, their tasks, and the lag of its input partitions", runStatus},
	{"reset", "reset a stopped application to reprocess its input", runReset},
	{"broker", "run an in-process development broker until interrupted", runBroker},
}

// run runs the command line args (without the program name) and returns
// the exit code. SIGINT and SIGTERM cancel the command's context.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, c := range commands {
		if c.name == args[0] {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "streamwork: unknown command %q\n", args[0])
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: streamwork <command> [flags]  (streamwork <command> -h for its flags)")
	fmt.Fprintln(w, "commands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
}

// newFlags returns the flag set of a command, writing usage to stderr.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("streamwork "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: streamwork %s %s\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args into fs; it returns the exit code to stop with (help:
// 0, a bad flag or a stray argument: 2) and false, or true to go on.
func parse(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitUsage, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected arguments %q\n", fs.Name(), fs.Args())
		fs.Usage()
		return exitUsage, false
	}
	return 0, true
}

// usageError reports a missing or bad flag value and returns exitUsage.
func usageError(fs *flag.FlagSet, format string, args ...any) int {
	fmt.Fprintf(fs.Output(), "%s: %s\n", fs.Name(), fmt.Sprintf(format, args...))
	fs.Usage()
	return exitUsage
}

// fail reports err and returns exitError.
func fail(stderr io.Writer, name string, err error) int {
	fmt.Fprintf(stderr, "streamwork %s: %v\n", name, err)
	return exitError
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// defaultTimeout bounds the Kafka requests of status and reset.
const defaultTimeout = 30 * time.Second
