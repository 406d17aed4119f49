package service

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/streamwork-go/streamwork/kstream"
)

// Flags are the flags the programs share. Register adds them to a flag set;
// after it parsed, the fields hold their values.
type Flags struct {
	// Brokers is -brokers: comma-separated bootstrap addresses (see Addrs
	// and Brokers).
	Brokers string
	// LogLevel is -log-level: debug, info, warn or error. Default info.
	LogLevel slog.Level
	// Guarantee is -guarantee, when registered (WithGuarantee): a name that
	// kstream.ParseDeliveryGuarantee reads.
	Guarantee kstream.DeliveryGuarantee
}

// FlagOpt selects the flags Register adds and their help.
type FlagOpt func(*flagCfg)

type flagCfg struct {
	embedded     bool
	guarantee    bool
	defGuarantee kstream.DeliveryGuarantee
}

// WithEmbeddedBroker says, in -brokers' help, that without it the program
// uses KAFKA_BROKERS or an embedded broker (see Brokers); without this
// option -brokers is documented as required.
func WithEmbeddedBroker() FlagOpt { return func(c *flagCfg) { c.embedded = true } }

// WithGuarantee adds -guarantee with default def.
func WithGuarantee(def kstream.DeliveryGuarantee) FlagOpt {
	return func(c *flagCfg) { c.guarantee, c.defGuarantee = true, def }
}

// Register adds -brokers and -log-level (and -guarantee with WithGuarantee)
// to fs.
func (f *Flags) Register(fs *flag.FlagSet, opts ...FlagOpt) {
	var c flagCfg
	for _, o := range opts {
		o(&c)
	}
	usage := "comma-separated seed brokers, host:port (required)"
	if c.embedded {
		usage = "Kafka bootstrap addresses, comma-separated (default: $" + BrokersEnv + ", else an embedded broker)"
	}
	fs.StringVar(&f.Brokers, "brokers", "", usage)
	f.LogLevel = slog.LevelInfo
	fs.TextVar(&f.LogLevel, "log-level", slog.LevelInfo, "log level on standard error: debug, info, warn or error")
	if c.guarantee {
		f.Guarantee = c.defGuarantee
		fs.TextVar(&f.Guarantee, "guarantee", c.defGuarantee, "delivery guarantee: at-least-once, at-most-once or exactly-once")
	}
}

// Addrs returns the addresses -brokers lists, without blanks.
func (f *Flags) Addrs() []string { return splitAddrs(f.Brokers) }

// Logger returns a text logger writing to w at LogLevel.
func (f *Flags) Logger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: f.LogLevel}))
}

// SignalContext returns a context that ends on SIGINT or SIGTERM, and the
// function that releases the signal handling.
func SignalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}
