package service

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kfake"
)

// BrokersEnv names the environment variable consulted when the flag is
// empty: comma-separated host:port bootstrap addresses.
const BrokersEnv = "KAFKA_BROKERS"

// Brokers returns the bootstrap addresses an example should use and a stop
// function to call when the example ends.
//
// If flagValue (the example's -brokers flag) is non-empty, its
// comma-separated addresses are returned; else those in KAFKA_BROKERS. With
// neither, Brokers starts an embedded one-node kfake cluster on a loopback
// port, logs one info line saying so, and stop closes it. stop is never nil
// when err is nil and is safe to call more than once. ctx bounds only the
// start: the embedded cluster lives until stop. A nil logger means
// slog.Default().
func Brokers(ctx context.Context, flagValue string, logger *slog.Logger) (addrs []string, stop func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	if addrs := splitAddrs(flagValue); len(addrs) > 0 {
		return addrs, func() {}, nil
	}
	if addrs := splitAddrs(os.Getenv(BrokersEnv)); len(addrs) > 0 {
		return addrs, func() {}, nil
	}

	cluster, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.DefaultNumPartitions(1), // as a real broker with num.partitions=1
		kfake.WithLogger(errorLogger{logger}),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("service: start embedded kfake broker: %w", err)
	}
	addrs = cluster.ListenAddrs()
	logger.Info(fmt.Sprintf("using an embedded in-process Kafka broker (kfake) at %s; "+
		"pass -brokers or set %s to use a real cluster", strings.Join(addrs, ","), BrokersEnv))
	return addrs, sync.OnceFunc(cluster.Close), nil
}

// splitAddrs splits a comma-separated address list, dropping blanks.
func splitAddrs(list string) []string {
	var addrs []string
	for a := range strings.SplitSeq(list, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	return addrs
}

// errorLogger passes kfake's errors to slog and drops the rest, which
// describe every request.
type errorLogger struct{ logger *slog.Logger }

// Logf implements kfake.Logger.
func (l errorLogger) Logf(level kfake.LogLevel, msg string, args ...any) {
	if level == kfake.LogLevelError {
		l.logger.Error("kfake: " + fmt.Sprintf(msg, args...))
	}
}
