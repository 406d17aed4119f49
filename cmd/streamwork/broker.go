package main

import (
	"context"
	"fmt"
	"io"

	"github.com/twmb/franz-go/pkg/kfake"
)

func runBroker(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("broker", "[-port N] [-data-dir DIR] [-partitions N]", stderr)
	port := fs.Int("port", 9092, "the port to listen on (0: any free port)")
	dataDir := fs.String("data-dir", "", "a directory the broker keeps its topics, records, offsets and groups in, and reloads them from at start; default: memory only")
	partitions := fs.Int("partitions", 1, "the partitions of topics created automatically")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if *port < 0 || *port > 65535 {
		return usageError(fs, "-port %d: out of range", *port)
	}
	if *partitions < 1 {
		return usageError(fs, "-partitions %d: want at least 1", *partitions)
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(*port),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(*partitions),
	}
	if *dataDir != "" {
		opts = append(opts, kfake.DataDir(*dataDir))
	}
	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		return fail(stderr, "broker", err)
	}
	addrs := cluster.ListenAddrs()
	fmt.Fprintf(stdout, "broker listening on %s\n", addrs[0])
	if *dataDir != "" {
		fmt.Fprintf(stdout, "data directory %s\n", *dataDir)
	}
	<-ctx.Done()
	// Close writes what is in memory to the data directory.
	cluster.Close()
	fmt.Fprintln(stdout, "broker stopped")
	return exitOK
}
