package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/kstream"
)

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("status", "-brokers host:port[,...] -app ID [-topology topology.json | -url http://host:port/prefix/]", stderr)
	brokers := fs.String("brokers", "", "comma-separated bootstrap brokers")
	app := fs.String("app", "", "the application id")
	topoFile := fs.String("topology", "", "the application's topology (JSON), to show the tasks of each member")
	base := fs.String("url", "", "a running App's dashboard base URL, to read its topology from")
	timeout := fs.Duration("timeout", defaultTimeout, "how long to wait for Kafka")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if *brokers == "" || *app == "" {
		return usageError(fs, "-brokers and -app are required")
	}
	if *topoFile != "" && *base != "" {
		return usageError(fs, "give at most one of -topology and -url")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	var opts []kstream.DescribeOpt
	if *topoFile != "" || *base != "" {
		var d kstream.TopologyDescription
		var err error
		if *topoFile != "" {
			d, err = readTopologyFile(*topoFile)
		} else {
			d, err = fetchTopology(ctx, *base)
		}
		if err != nil {
			return fail(stderr, "status", err)
		}
		opts = append(opts, kstream.WithTopology(d))
	}
	adm, err := newAdmin(*brokers)
	if err != nil {
		return fail(stderr, "status", err)
	}
	defer adm.Close()
	d, err := kstream.DescribeApplication(ctx, adm, *app, opts...)
	if err != nil {
		return fail(stderr, "status", err)
	}
	writeStatus(stdout, d)
	return exitOK
}

// newAdmin returns an admin client of brokers (comma-separated).
func newAdmin(brokers string) (*kadm.Client, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(splitList(brokers)...))
	if err != nil {
		return nil, err
	}
	return kadm.NewClient(cl), nil
}

// writeStatus prints d as two tables: the members, then the input
// partitions.
func writeStatus(w io.Writer, d kstream.ApplicationDescription) {
	var total int64
	for _, p := range d.Partitions {
		total += p.Lag
	}
	fmt.Fprintf(w, "application %s: group %s, %d members, total lag %d\n\n", d.AppID, d.State, len(d.Members), total)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tWORKER\tTASKS\tPARTITIONS\tCLIENT\tHOST\tMEMBER")
	for _, m := range d.Members {
		tasks := "-"
		if m.Tasks != nil {
			ids := make([]string, len(m.Tasks))
			for i, id := range m.Tasks {
				ids[i] = id.String()
			}
			tasks = orDash(strings.Join(ids, ","))
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", orDash(m.InstanceID), m.Worker, tasks,
			orDash(formatPartitions(m.Partitions)), orDash(m.ClientID), orDash(m.Host), m.MemberID)
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tCOMMITTED\tEND\tLAG\tOWNER")
	for _, p := range d.Partitions {
		committed := "-"
		if p.Committed >= 0 {
			committed = strconv.FormatInt(p.Committed, 10)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%s\n", p.Topic, p.Partition, committed, p.End, p.Lag, orDash(p.Owner))
	}
	_ = tw.Flush()
}

// formatPartitions renders partitions as "topic:0,1 other:2", topics
// sorted.
func formatPartitions(ps map[string][]int32) string {
	topics := make([]string, 0, len(ps))
	for tp := range ps {
		topics = append(topics, tp)
	}
	slices.Sort(topics)
	parts := make([]string, len(topics))
	for i, tp := range topics {
		nums := make([]string, len(ps[tp]))
		for j, p := range ps[tp] {
			nums[j] = strconv.Itoa(int(p))
		}
		parts[i] = tp + ":" + strings.Join(nums, ",")
	}
	return strings.Join(parts, " ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
