package kstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// internalTopicWait bounds the wait for created internal topics to appear
// in the cluster's metadata.
const internalTopicWait = 30 * time.Second

// topicPlan is what Run works out about the topology's topics before it
// starts the workers.
type topicPlan struct {
	// counts has the partition count of every topic the topology reads or
	// writes with a fixed name (full names for internal ones).
	counts map[string]int32
	// subPartitions is the number of tasks of each sub-topology.
	subPartitions map[int]int32
	// internal are the internal topics to create (full name => config).
	internal map[string]internalTopic
}

type internalTopic struct {
	partitions int32
	changelog  bool
}

// adminOpts returns the options of a client that neither consumes nor
// joins the group: the user's ClientOpts without consumer and group
// options, the seed brokers, and a logger.
func adminOpts(cfg *config, logger *slog.Logger) []kgo.Opt {
	opts := []kgo.Opt{kgo.WithLogger(newKgoLogger(logger))}
	for _, o := range cfg.clientOpts {
		switch o.(type) {
		case kgo.ConsumerOpt, kgo.GroupOpt:
		default:
			opts = append(opts, o)
		}
	}
	return append(opts, kgo.SeedBrokers(cfg.brokers...))
}

// prepareTopics checks the topology's topics and creates its internal
// ones:
//
//   - every user source topic, fixed sink topic and global table topic
//     exists (ErrMissingTopic names the missing ones);
//   - repartition topics registered with 0 partitions get the count of the
//     user topics they are co-partitioned with (the other source topics
//     of the sub-topology reading them), else the largest count of the
//     source topics of the sub-topology writing them;
//   - the source topics of each sub-topology have equal counts
//     (ErrCopartition);
//   - changelog topics have as many partitions as their store's
//     sub-topology has tasks;
//   - internal topics that are missing are created (repartition:
//     cleanup.policy=delete, retention.ms=-1; changelog:
//     cleanup.policy=compact; replication min(3, brokers)); existing ones
//     with another partition count fail with ErrInternalTopic.
func (a *App) prepareTopics(ctx context.Context) (*topicPlan, error) {
	cfg := &a.cfg
	cl, err := kgo.NewClient(append(adminOpts(cfg, cfg.logger),
		kgo.ClientID(fmt.Sprintf("%s-%s-admin", cfg.appID, cfg.instanceID)),
		kgo.MetadataMinAge(100*time.Millisecond))...)
	if err != nil {
		return nil, fmt.Errorf("%w: admin client: %v", ErrConfig, err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	topo, appID := a.topo, cfg.appID

	// User topics.
	var topics []string
	for _, st := range topo.subs {
		for _, tp := range st.topics {
			if !st.internal[tp] {
				topics = append(topics, tp)
			}
		}
		topics = append(topics, st.sinks...)
	}
	for _, g := range topo.globals {
		topics = append(topics, g.topic)
	}
	slices.Sort(topics)
	topics = slices.Compact(topics)
	plan := &topicPlan{counts: make(map[string]int32), subPartitions: make(map[int]int32), internal: make(map[string]internalTopic)}
	if len(topics) > 0 {
		details, err := adm.ListTopics(ctx, topics...)
		if err != nil {
			return nil, fmt.Errorf("kstream: check topics: %w", err)
		}
		var missing []string
		for _, tp := range topics {
			d, ok := details[tp]
			switch {
			case !details.Has(tp):
				missing = append(missing, fmt.Sprintf("%q", tp))
			case ok && d.Err != nil:
				return nil, fmt.Errorf("kstream: check topic %q: %w", tp, d.Err)
			default:
				plan.counts[tp] = int32(len(d.Partitions))
			}
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("%w: %s", ErrMissingTopic, strings.Join(missing, ", "))
		}
	}

	// Repartition topics' counts.
	full := func(st *subtopology) []string { return st.sourceTopics(appID) }
	for _, it := range topo.internalTopics {
		if it.partitions > 0 {
			plan.counts[internalTopicName(appID, it.name)] = it.partitions
		}
	}
	// Co-partitioned with user topics: take their count.
	for _, st := range topo.subs {
		var user int32
		for _, tp := range st.topics {
			if !st.internal[tp] {
				user = max(user, plan.counts[tp])
			}
		}
		if user == 0 {
			continue
		}
		for _, tp := range full(st) {
			if _, ok := plan.counts[tp]; !ok {
				plan.counts[tp] = user
			}
		}
	}
	// Else the largest source of the writing sub-topology, until nothing
	// changes (a repartition may feed another).
	for changed := true; changed; {
		changed = false
		for _, it := range topo.internalTopics {
			name := internalTopicName(appID, it.name)
			if _, ok := plan.counts[name]; ok {
				continue
			}
			var n int32
			known := true
			writers := 0
			for _, st := range topo.subs {
				if !writesInternal(st, it.name) {
					continue
				}
				writers++
				for _, tp := range full(st) {
					c, ok := plan.counts[tp]
					if !ok {
						known = false
					}
					n = max(n, c)
				}
			}
			if known && writers > 0 && n > 0 {
				plan.counts[name] = n
				changed = true
			}
		}
	}
	var unknown []string
	for _, it := range topo.internalTopics {
		if _, ok := plan.counts[internalTopicName(appID, it.name)]; !ok {
			unknown = append(unknown, internalTopicName(appID, it.name))
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("%w: cannot derive the partition count of %s; set it (Partitions)", ErrTopology, strings.Join(unknown, ", "))
	}

	// Co-partitioning, internal topics included.
	var mismatched []string
	for _, st := range topo.subs {
		fs := full(st)
		for _, tp := range fs[1:] {
			if plan.counts[tp] != plan.counts[fs[0]] {
				mismatched = append(mismatched, copartitionMessage(st.id, fs, plan.counts))
				break
			}
		}
		plan.subPartitions[st.id] = plan.counts[fs[0]]
	}
	if len(mismatched) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrCopartition, strings.Join(mismatched, "; "))
	}

	// Internal topics to have.
	for _, it := range topo.internalTopics {
		name := internalTopicName(appID, it.name)
		plan.internal[name] = internalTopic{partitions: plan.counts[name]}
	}
	for name, spec := range topo.stores {
		st := topo.storeSub[name]
		if !spec.changelog || st == nil {
			continue
		}
		plan.internal[spec.changelogTopic(appID)] = internalTopic{partitions: plan.subPartitions[st.id], changelog: true}
	}
	if err := a.ensureInternalTopics(ctx, adm, plan.internal); err != nil {
		return nil, err
	}
	return plan, nil
}

// writesInternal reports whether st has an internal sink to short.
func writesInternal(st *subtopology, short string) bool {
	for _, n := range st.nodes {
		if n.kind == kindSink && n.internal && slices.Contains(n.topics, short) {
			return true
		}
	}
	return false
}

// ensureInternalTopics creates the missing internal topics and checks the
// partition counts of the existing ones, then waits until the cluster's
// metadata has them all.
func (a *App) ensureInternalTopics(ctx context.Context, adm *kadm.Client, want map[string]internalTopic) error {
	if len(want) == 0 {
		return nil
	}
	names := make([]string, 0, len(want))
	for name := range want {
		names = append(names, name)
	}
	sort.Strings(names)
	details, err := adm.ListTopics(ctx, names...)
	if err != nil {
		return fmt.Errorf("kstream: list internal topics: %w", err)
	}
	var missing []string
	for _, name := range names {
		if !details.Has(name) {
			missing = append(missing, name)
			continue
		}
		if err := checkPartitions(name, details[name], want[name].partitions); err != nil {
			return err
		}
	}
	if len(missing) > 0 {
		meta, err := adm.BrokerMetadata(ctx)
		if err != nil {
			return fmt.Errorf("kstream: create internal topics: %w", err)
		}
		rf := int16(min(3, len(meta.Brokers)))
		for _, name := range missing {
			it := want[name]
			configs := map[string]*string{"cleanup.policy": kadm.StringPtr("delete"), "retention.ms": kadm.StringPtr("-1")}
			if it.changelog {
				configs = map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}
			}
			resp, err := adm.CreateTopic(ctx, it.partitions, rf, configs, name)
			if err == nil {
				err = resp.Err
			}
			switch {
			case err == nil:
				a.cfg.logger.Info("kstream: created internal topic", "topic", name, "partitions", it.partitions,
					"replication", rf, "changelog", it.changelog)
			case errors.Is(err, kerr.TopicAlreadyExists):
				// Another instance was first; its count is checked below.
			default:
				return fmt.Errorf("%w: create %q: %v", ErrInternalTopic, name, err)
			}
		}
	}
	// Wait until the metadata shows every internal topic with its
	// partitions and leaders, and check the counts again (a topic another
	// instance created concurrently).
	wctx, cancel := context.WithTimeout(ctx, internalTopicWait)
	defer cancel()
	for {
		details, err := adm.ListTopics(wctx, names...)
		ready := err == nil
		if ready {
			for _, name := range names {
				d, ok := details[name]
				if !ok || d.Err != nil || len(d.Partitions) == 0 {
					ready = false
					break
				}
				if err := checkPartitions(name, d, want[name].partitions); err != nil {
					return err
				}
				for _, p := range d.Partitions {
					if p.Err != nil || p.Leader < 0 {
						ready = false
					}
				}
			}
		}
		if ready {
			return nil
		}
		select {
		case <-wctx.Done():
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("%w: internal topics %v not ready after %v (last error: %v)", ErrInternalTopic, names, internalTopicWait, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func checkPartitions(name string, d kadm.TopicDetail, want int32) error {
	if d.Err != nil {
		return nil // not known yet: checked again
	}
	if got := int32(len(d.Partitions)); got != want {
		return fmt.Errorf("%w: %q has %d partitions, the topology needs %d (delete it, or reset the application)", ErrInternalTopic, name, got, want)
	}
	return nil
}

// internalTopicName returns the full name of an internal topic.
func internalTopicName(appID, short string) string { return resolveTopic(appID, true, short) }
