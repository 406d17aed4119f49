package service

import (
	"flag"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/streamwork-go/streamwork/kstream"
)

func TestFlags(t *testing.T) {
	var f Flags
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f.Register(fs, WithGuarantee(kstream.AtLeastOnce))
	if f.LogLevel != slog.LevelInfo || f.Guarantee != kstream.AtLeastOnce {
		t.Fatalf("defaults: %v %v", f.LogLevel, f.Guarantee)
	}
	if err := fs.Parse([]string{"-brokers", " a:1, ,b:2 ", "-log-level", "debug", "-guarantee", "exactly-once"}); err != nil {
		t.Fatal(err)
	}
	if got := f.Addrs(); !slices.Equal(got, []string{"a:1", "b:2"}) {
		t.Fatalf("Addrs = %q", got)
	}
	if f.LogLevel != slog.LevelDebug || f.Guarantee != kstream.ExactlyOnce {
		t.Fatalf("parsed: %v %v", f.LogLevel, f.Guarantee)
	}
	fs2 := flag.NewFlagSet("t", flag.ContinueOnError)
	fs2.SetOutput(io.Discard)
	var g Flags
	g.Register(fs2, WithGuarantee(kstream.AtLeastOnce))
	if err := fs2.Parse([]string{"-guarantee", "twice"}); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("a bad -guarantee: err = %v", err)
	}
	if fs2.Lookup("brokers").Usage == "" || !strings.Contains(fs2.Lookup("brokers").Usage, "required") {
		t.Fatalf("-brokers usage without WithEmbeddedBroker: %q", fs2.Lookup("brokers").Usage)
	}
}
