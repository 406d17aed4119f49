package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/kstream/internal/assign"
	"github.com/streamwork-go/streamwork/kstream/internal/engine"
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
	// internal are the internal topics to create (full name => Config).
	Internal map[string]internalTopic
}

type internalTopic struct {
	Partitions int32
	Changelog  bool
	// Retention of a window or session store's changelog (0: none).
	Retention time.Duration
}

// adminOpts returns the options of a client that neither consumes nor
// joins the group: the user's ClientOpts without consumer and group
// options, the seed brokers, and a logger.
func adminOpts(cfg *Config, logger *slog.Logger) []kgo.Opt {
	opts := []kgo.Opt{kgo.WithLogger(newKgoLogger(logger))}
	for _, o := range cfg.ClientOpts {
		switch o.(type) {
		case kgo.ConsumerOpt, kgo.GroupOpt:
		default:
			opts = append(opts, o)
		}
	}
	return append(opts, kgo.SeedBrokers(cfg.Brokers...))
}

// AdminClient returns a client for admin requests made with the App's
// brokers and client options (consumer and group options left out), its
// client id "<application id>-<name>". It reads only options that never
// change, so it may be called concurrently with Run. The caller closes it.
func (a *App) AdminClient(name string) (*kgo.Client, error) {
	cfg := &a.cfg
	cl, err := kgo.NewClient(append(adminOpts(cfg, cfg.Logger), kgo.ClientID(cfg.AppID+"-"+name))...)
	if err != nil {
		return nil, fmt.Errorf("%w: admin client: %v", engine.ErrConfig, err)
	}
	return cl, nil
}

// prepareTopics checks the topology's topics and creates its internal
// ones:
//
//   - every user source topic, fixed sink topic and global table topic
//     exists (engine.ErrMissingTopic names the missing ones);
//   - repartition topics registered with 0 partitions get the count of the
//     user topics they are co-partitioned with (the other source topics
//     of the sub-topology reading them), else the largest count of the
//     source topics of the sub-topology writing them;
//   - the source topics of each sub-topology have equal counts
//     (engine.ErrCopartition);
//   - changelog topics have as many partitions as their store's
//     sub-topology has tasks;
//   - internal topics that are missing are created (repartition:
//     cleanup.policy=delete, retention.ms=-1; changelog:
//     cleanup.policy=compact; replication min(3, brokers)); existing ones
//     with another partition count fail with engine.ErrInternalTopic.
func (a *App) prepareTopics(ctx context.Context) (*topicPlan, error) {
	cfg := &a.cfg
	cl, err := kgo.NewClient(append(adminOpts(cfg, cfg.Logger),
		kgo.ClientID(fmt.Sprintf("%s-%s-admin", cfg.AppID, cfg.InstanceID)),
		kgo.MetadataMinAge(100*time.Millisecond))...)
	if err != nil {
		return nil, fmt.Errorf("%w: admin client: %v", engine.ErrConfig, err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	plan := &topicPlan{counts: make(map[string]int32), subPartitions: make(map[int]int32), Internal: make(map[string]internalTopic)}
	if err := plan.countUserTopics(ctx, adm, a.Topo, cfg.Logger); err != nil {
		return nil, err
	}
	if err := plan.deriveRepartitionCounts(a.Topo, cfg.AppID); err != nil {
		return nil, err
	}
	if err := plan.checkCopartitioning(a.Topo, cfg.AppID); err != nil {
		return nil, err
	}
	plan.listInternalTopics(a.Topo, cfg.AppID)
	if err := a.ensureInternalTopics(ctx, adm, plan.Internal); err != nil {
		return nil, err
	}
	return plan, nil
}

// userTopics returns the topics topo reads and writes that the user owns
// (sources, fixed sinks, global tables), sorted, without duplicates.
func userTopics(topo *engine.Topology) []string {
	var topics []string
	for _, st := range topo.Subs {
		for _, tp := range st.Topics {
			if !st.Internal[tp] {
				topics = append(topics, tp)
			}
		}
		topics = append(topics, st.Sinks...)
	}
	for _, g := range topo.Globals {
		topics = append(topics, g.Topic)
	}
	slices.Sort(topics)
	return slices.Compact(topics)
}

// userTopicGrace bounds how long Run waits for a user topic that the
// cluster's metadata does not show, or shows without a leader, before it
// fails: a topic created just before Run may not be in a broker's
// metadata yet (its CreateTopics answer comes once the controller has the
// topic, before every broker has applied it).
const userTopicGrace = 5 * time.Second

// countUserTopics checks that every user topic exists (ErrMissingTopic
// names those that do not) and records its partition count. A topic that
// is missing or has a retriable error is looked up again, every 100 ms, for
// userTopicGrace.
func (plan *topicPlan) countUserTopics(ctx context.Context, adm *kadm.Client, topo *engine.Topology, logger *slog.Logger) error {
	topics := userTopics(topo)
	if len(topics) == 0 {
		return nil
	}
	deadline := time.Now().Add(userTopicGrace)
	for attempt := 0; ; attempt++ {
		missing, err := plan.lookUpUserTopics(ctx, adm, topics)
		if err == nil && len(missing) > 0 {
			err = fmt.Errorf("%w: %s", engine.ErrMissingTopic, strings.Join(missing, ", "))
		}
		retry := len(missing) > 0 || kerr.IsRetriable(err)
		if err == nil || !retry || time.Now().After(deadline) {
			return err
		}
		if attempt == 0 {
			logger.Info("kstream: waiting for topics to appear in the cluster's metadata", "topics", topics, "for", userTopicGrace, "err", err)
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// lookUpUserTopics records the partition count of each of topics that the
// cluster's metadata shows, and returns the quoted names of those it does
// not.
func (plan *topicPlan) lookUpUserTopics(ctx context.Context, adm *kadm.Client, topics []string) (missing []string, err error) {
	details, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("kstream: check topics: %w", err)
	}
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
	return missing, nil
}

// deriveRepartitionCounts gives every repartition topic its partition
// count: the one set with Partitions; else that of the user topics it is
// co-partitioned with; else the largest source of the sub-topology that
// writes it, until nothing changes (a repartition may feed another). A
// count that cannot be derived is an ErrTopology.
func (plan *topicPlan) deriveRepartitionCounts(topo *engine.Topology, appID string) error {
	for _, it := range topo.InternalTopics {
		if it.Partitions > 0 {
			plan.counts[internalTopicName(appID, it.Name)] = it.Partitions
		}
	}
	plan.countFromUserTopics(topo, appID)
	for plan.countFromWriters(topo, appID) {
	}
	var unknown []string
	for _, it := range topo.InternalTopics {
		if _, ok := plan.counts[internalTopicName(appID, it.Name)]; !ok {
			unknown = append(unknown, internalTopicName(appID, it.Name))
		}
	}
	if len(unknown) > 0 {
		return fmt.Errorf("%w: cannot derive the partition count of %s; set it (Partitions)", engine.ErrTopology, strings.Join(unknown, ", "))
	}
	return nil
}

// countFromUserTopics gives the internal sources of a sub-topology that
// also reads user topics the count of those (they are co-partitioned).
func (plan *topicPlan) countFromUserTopics(topo *engine.Topology, appID string) {
	for _, st := range topo.Subs {
		var user int32
		for _, tp := range st.Topics {
			if !st.Internal[tp] {
				user = max(user, plan.counts[tp])
			}
		}
		if user == 0 {
			continue
		}
		for _, tp := range st.SourceTopics(appID) {
			if _, ok := plan.counts[tp]; !ok {
				plan.counts[tp] = user
			}
		}
	}
}

// countFromWriters gives each repartition topic without a count the largest
// source count of the sub-topologies that write it, once all of those are
// known. It reports whether it set one.
func (plan *topicPlan) countFromWriters(topo *engine.Topology, appID string) (changed bool) {
	for _, it := range topo.InternalTopics {
		name := internalTopicName(appID, it.Name)
		if _, ok := plan.counts[name]; ok {
			continue
		}
		var n int32
		known, writers := true, 0
		for _, st := range topo.Subs {
			if !writesInternal(st, it.Name) {
				continue
			}
			writers++
			for _, tp := range st.SourceTopics(appID) {
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
	return changed
}

// checkCopartitioning checks that the sources of each sub-topology,
// internal topics included, have one partition count (ErrCopartition names
// those that do not) and records it as the sub-topology's task count.
func (plan *topicPlan) checkCopartitioning(topo *engine.Topology, appID string) error {
	var mismatched []string
	for _, st := range topo.Subs {
		fs := st.SourceTopics(appID)
		for _, tp := range fs[1:] {
			if plan.counts[tp] != plan.counts[fs[0]] {
				mismatched = append(mismatched, assign.CopartitionMessage(st.ID, fs, plan.counts))
				break
			}
		}
		plan.subPartitions[st.ID] = plan.counts[fs[0]]
	}
	if len(mismatched) > 0 {
		return fmt.Errorf("%w: %s", engine.ErrCopartition, strings.Join(mismatched, "; "))
	}
	return nil
}

// listInternalTopics lists the internal topics to have: the repartition
// topics, and a changelog per changelogged store with one partition per
// task of its sub-topology.
func (plan *topicPlan) listInternalTopics(topo *engine.Topology, appID string) {
	for _, it := range topo.InternalTopics {
		name := internalTopicName(appID, it.Name)
		plan.Internal[name] = internalTopic{Partitions: plan.counts[name]}
	}
	for name, spec := range topo.Stores {
		st := topo.StoreSub[name]
		if !spec.Changelog || st == nil {
			continue
		}
		plan.Internal[spec.ChangelogTopic(appID)] = internalTopic{Partitions: plan.subPartitions[st.ID], Changelog: true, Retention: spec.Retention}
	}
}

// checkInternalTopicNames checks that the name of every internal topic
// (repartition and changelog topics, "<application id>-<name>-...") fits
// Kafka's limit on topic names, and names the longest when one does not.
func checkInternalTopicNames(topo *engine.Topology, appID string) error {
	longest := ""
	for _, it := range topo.InternalTopics {
		if name := internalTopicName(appID, it.Name); len(name) > len(longest) {
			longest = name
		}
	}
	for _, spec := range topo.Stores {
		if name := spec.ChangelogTopic(appID); spec.Changelog && len(name) > len(longest) {
			longest = name
		}
	}
	if len(longest) > maxTopicLen {
		return fmt.Errorf("%w: ApplicationID %q makes the internal topic name %q of %d characters, more than the %d Kafka allows: use a shorter application id (or shorter store and operator names)",
			engine.ErrConfig, appID, longest, len(longest), maxTopicLen)
	}
	return nil
}

// writesInternal reports whether st has an internal sink to short.
func writesInternal(st *subtopology, short string) bool {
	for _, n := range st.Nodes {
		if n.Kind == engine.KindSink && n.Internal && slices.Contains(n.Topics, short) {
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
	missing, err := checkInternalTopics(ctx, adm, names, want)
	if err != nil {
		return err
	}
	if err := a.createInternalTopics(ctx, adm, missing, want); err != nil {
		return err
	}
	return waitInternalTopics(ctx, adm, names, want)
}

// checkInternalTopics returns the internal topics of names that do not
// exist yet, and fails with ErrInternalTopic when one that exists has
// another partition count than want says.
func checkInternalTopics(ctx context.Context, adm *kadm.Client, names []string, want map[string]internalTopic) ([]string, error) {
	details, err := adm.ListTopics(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("kstream: list internal topics: %w", err)
	}
	var missing []string
	for _, name := range names {
		if !details.Has(name) {
			missing = append(missing, name)
			continue
		}
		if err := checkPartitions(name, details[name], want[name].Partitions); err != nil {
			return nil, err
		}
	}
	return missing, nil
}

// createInternalTopics creates the missing internal topics: repartition
// topics with delete cleanup and no time retention (the runtime purges what
// it consumed), changelogs compacted; replication min(3, brokers). A topic
// another instance created first is fine (its count is checked after).
func (a *App) createInternalTopics(ctx context.Context, adm *kadm.Client, missing []string, want map[string]internalTopic) error {
	if len(missing) == 0 {
		return nil
	}
	meta, err := adm.BrokerMetadata(ctx)
	if err != nil {
		return fmt.Errorf("kstream: create internal topics: %w", err)
	}
	rf := int16(min(3, len(meta.Brokers)))
	for _, name := range missing {
		it := want[name]
		configs := map[string]*string{"cleanup.policy": kadm.StringPtr("delete"), "retention.ms": kadm.StringPtr("-1")}
		if it.Changelog {
			configs = map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}
			if it.Retention > 0 {
				ret := (it.Retention + engine.WindowChangelogExtraRetention).Milliseconds()
				configs = map[string]*string{
					"cleanup.policy": kadm.StringPtr("compact,delete"),
					"retention.ms":   kadm.StringPtr(strconv.FormatInt(ret, 10)),
				}
			}
		}
		resp, err := adm.CreateTopic(ctx, it.Partitions, rf, configs, name)
		if err == nil {
			err = resp.Err
		}
		switch {
		case err == nil:
			a.cfg.Logger.Info("kstream: created internal topic", "topic", name, "partitions", it.Partitions,
				"replication", rf, "changelog", it.Changelog)
		case errors.Is(err, kerr.TopicAlreadyExists):
			// Another instance was first; its count is checked below.
		default:
			return fmt.Errorf("%w: create %q: %v", engine.ErrInternalTopic, name, err)
		}
	}
	return nil
}

// waitInternalTopics waits until the metadata shows every internal topic
// with its partitions and leaders, and checks the counts again (a topic
// another instance created concurrently), for internalTopicWait at most.
func waitInternalTopics(ctx context.Context, adm *kadm.Client, names []string, want map[string]internalTopic) error {
	wctx, cancel := context.WithTimeout(ctx, internalTopicWait)
	defer cancel()
	for {
		ready, err := internalTopicsReady(wctx, adm, names, want)
		if ready || (err != nil && errors.Is(err, engine.ErrInternalTopic)) {
			return err
		}
		select {
		case <-wctx.Done():
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("%w: internal topics %v not ready after %v (last error: %v)", engine.ErrInternalTopic, names, internalTopicWait, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// internalTopicsReady reports whether every one of names has all its
// partitions with a leader; a wrong partition count is an error wrapping
// ErrInternalTopic, a failed look-up an error to retry.
func internalTopicsReady(ctx context.Context, adm *kadm.Client, names []string, want map[string]internalTopic) (bool, error) {
	details, err := adm.ListTopics(ctx, names...)
	if err != nil {
		return false, err
	}
	for _, name := range names {
		d, ok := details[name]
		if !ok || d.Err != nil || len(d.Partitions) == 0 {
			return false, nil
		}
		if err := checkPartitions(name, d, want[name].Partitions); err != nil {
			return false, err
		}
		for _, p := range d.Partitions {
			if p.Err != nil || p.Leader < 0 {
				return false, nil
			}
		}
	}
	return true, nil
}

func checkPartitions(name string, d kadm.TopicDetail, want int32) error {
	if d.Err != nil {
		return nil // not known yet: checked again
	}
	if got := int32(len(d.Partitions)); got != want {
		return fmt.Errorf("%w: %q has %d partitions, the topology needs %d (delete it, or reset the application)", engine.ErrInternalTopic, name, got, want)
	}
	return nil
}

// internalTopicName returns the full name of an internal topic.
func internalTopicName(appID, short string) string { return engine.ResolveTopic(appID, true, short) }
