package kstream

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
	"github.com/streamwork-go/streamwork/kstream/internal/runtime"
	"github.com/streamwork-go/streamwork/kstream/internal/wire"
)

// ErrApplicationActive reports that ResetApplication found members in the
// application's group: its instances must be stopped first.
var ErrApplicationActive = errors.New("kstream: application has active members")

// ApplicationDescription is what DescribeApplication found out about a
// running or stopped application: its group's members and its input
// partitions.
type ApplicationDescription struct {
	// AppID is the application id (the group id).
	AppID string
	// State is the group's state as Kafka reports it ("Stable",
	// "PreparingRebalance", "CompletingRebalance", "Empty"; "Dead" when
	// the group does not exist).
	State string
	// Members are the group's members (one per worker of each instance),
	// sorted by instance id, worker and member id.
	Members []MemberDescription
	// Partitions are the application's input partitions (the source and
	// repartition topics its members subscribe to, those it has committed
	// offsets for and, with WithTopology, the topology's), sorted by topic
	// and partition.
	Partitions []InputPartitionDescription
}

// MemberDescription is one member of an application's group: one worker
// of one instance.
type MemberDescription struct {
	// MemberID is the member id the group coordinator gave it; ClientID
	// and Host are its Kafka client id and the host it connects from.
	MemberID string
	ClientID string
	Host     string
	// InstanceID and Worker are the App instance and worker index the
	// member reported in its group metadata ("" and -1 when unreadable).
	InstanceID string
	Worker     int
	// Partitions are the input partitions assigned to it, by topic, each
	// list sorted.
	Partitions map[string][]int32
	// Tasks are the tasks those partitions make up, sorted. They are only
	// known with WithTopology (a task is a sub-topology and a partition
	// number, and the group does not say which topics form a
	// sub-topology); nil otherwise.
	Tasks []TaskID
}

// InputPartitionDescription is the progress of the application on one
// input partition.
type InputPartitionDescription struct {
	Topic     string
	Partition int32
	// Committed is the group's committed offset: the next record the
	// application processes; -1 when it has committed none.
	Committed int64
	// Start and End are the partition's log start and last stable offset.
	Start, End int64
	// Lag is End minus Committed (minus Start when nothing is committed,
	// as the App then starts at the log start), never negative.
	Lag int64
	// Owner is the instance id of the member the partition is assigned
	// to, "" when none.
	Owner string
}

// DescribeOpt configures DescribeApplication.
type DescribeOpt interface {
	applyDescribe(*describeCfg)
}

type describeCfg struct {
	topo *TopologyDescription
}

type describeOptFunc func(*describeCfg)

func (f describeOptFunc) applyDescribe(c *describeCfg) { f(c) }

// WithTopology gives DescribeApplication the application's topology (from
// Topology.Describe, or its JSON form as the App's dashboard serves it), so
// that it can tell which tasks each member runs and name the topology's
// input partitions that have no committed offset yet.
func WithTopology(d TopologyDescription) DescribeOpt {
	return describeOptFunc(func(c *describeCfg) { c.topo = &d })
}

// sourceTopics returns, per sub-topology id, the full names of its source
// topics for application appID (a repartition topic's short name becomes
// "<appID>-<name>").
func (d TopologyDescription) sourceTopics(appID string) map[string]int {
	out := make(map[string]int)
	for _, st := range d.Subtopologies {
		for _, n := range st.Nodes {
			if n.Kind != engine.KindSource.String() {
				continue
			}
			for _, tp := range n.Topics {
				if strings.HasSuffix(tp, "-repartition") {
					out[appID+"-"+tp] = st.ID
				}
				out[tp] = st.ID
			}
		}
	}
	return out
}

// DescribeApplication describes application appID through adm: the members
// of its group (decoded from their group metadata and assignments), and the
// committed offset, end offset and lag of each of its input partitions. It
// works whether the application runs or not.
func DescribeApplication(ctx context.Context, adm *kadm.Client, appID string, opts ...DescribeOpt) (ApplicationDescription, error) {
	var cfg describeCfg
	for _, o := range opts {
		o.applyDescribe(&cfg)
	}
	d := ApplicationDescription{AppID: appID}
	if !engine.LegalName.MatchString(appID) {
		return d, fmt.Errorf("%w: application id %q", ErrConfig, appID)
	}
	g, err := describeGroup(ctx, adm, appID)
	if err != nil {
		return d, err
	}
	d.State = g.State
	var bySub map[string]int
	if cfg.topo != nil {
		bySub = cfg.topo.sourceTopics(appID)
	}
	topics := make(map[string]bool)
	owner := make(map[string]map[int32]string)
	for _, m := range g.Members {
		md := MemberDescription{MemberID: m.MemberID, ClientID: m.ClientID, Host: m.ClientHost, Worker: -1, Partitions: map[string][]int32{}}
		if meta, ok := m.Join.AsConsumer(); ok {
			for _, tp := range meta.Topics {
				topics[tp] = true
			}
			if info, err := wire.DecodeMemberInfo(meta.UserData); err == nil {
				md.InstanceID, md.Worker = info.InstanceID, info.Worker
			}
		}
		if a, ok := m.Assigned.AsConsumer(); ok {
			tasks := make(map[TaskID]bool)
			for _, t := range a.Topics {
				topics[t.Topic] = true
				md.Partitions[t.Topic] = slices.Sorted(slices.Values(t.Partitions))
				for _, p := range t.Partitions {
					if owner[t.Topic] == nil {
						owner[t.Topic] = make(map[int32]string)
					}
					owner[t.Topic][p] = md.InstanceID
					if sub, ok := bySub[t.Topic]; ok {
						tasks[TaskID{Subtopology: sub, Partition: p}] = true
					}
				}
			}
			if cfg.topo != nil {
				md.Tasks = make([]TaskID, 0, len(tasks))
				for id := range tasks {
					md.Tasks = append(md.Tasks, id)
				}
				slices.SortFunc(md.Tasks, engine.CompareTaskIDs)
			}
		}
		d.Members = append(d.Members, md)
	}
	slices.SortFunc(d.Members, func(a, b MemberDescription) int {
		return cmp.Or(cmp.Compare(a.InstanceID, b.InstanceID), cmp.Compare(a.Worker, b.Worker), cmp.Compare(a.MemberID, b.MemberID))
	})
	committed, err := adm.FetchOffsets(ctx, appID)
	if err != nil {
		return d, fmt.Errorf("kstream: committed offsets of application %q: %w", appID, err)
	}
	for tp := range committed {
		topics[tp] = true
	}
	for tp := range bySub {
		if !strings.HasSuffix(tp, "-repartition") || strings.HasPrefix(tp, appID+"-") {
			topics[tp] = true
		}
	}
	if len(topics) == 0 {
		return d, nil
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for tp := range topics {
			if !yield(tp) {
				return
			}
		}
	})
	ends, err := adm.ListCommittedOffsets(ctx, names...)
	if err != nil {
		return d, fmt.Errorf("kstream: end offsets of application %q: %w", appID, err)
	}
	starts, err := adm.ListStartOffsets(ctx, names...)
	if err != nil {
		return d, fmt.Errorf("kstream: start offsets of application %q: %w", appID, err)
	}
	ends.Each(func(e kadm.ListedOffset) {
		if e.Err != nil || e.Partition < 0 {
			return
		}
		p := InputPartitionDescription{Topic: e.Topic, Partition: e.Partition, Committed: -1, End: e.Offset, Owner: owner[e.Topic][e.Partition]}
		if s, ok := starts.Lookup(e.Topic, e.Partition); ok && s.Err == nil {
			p.Start = s.Offset
		}
		from := p.Start
		if c, ok := committed.Lookup(e.Topic, e.Partition); ok && c.Err == nil && c.At >= 0 {
			p.Committed = c.At
			from = max(c.At, p.Start)
		}
		p.Lag = max(0, p.End-from)
		d.Partitions = append(d.Partitions, p)
	})
	slices.SortFunc(d.Partitions, func(a, b InputPartitionDescription) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return d, nil
}

// describeGroup describes group appID; a group that does not exist is
// "Dead" with no members.
func describeGroup(ctx context.Context, adm *kadm.Client, appID string) (kadm.DescribedGroup, error) {
	gs, err := adm.DescribeGroups(ctx, appID)
	if err != nil && len(gs) == 0 {
		return kadm.DescribedGroup{}, fmt.Errorf("kstream: describe group of application %q: %w", appID, err)
	}
	g, ok := gs[appID]
	switch {
	case !ok || errors.Is(g.Err, kerr.GroupIDNotFound):
		return kadm.DescribedGroup{Group: appID, State: "Dead"}, nil
	case g.Err != nil:
		return g, fmt.Errorf("kstream: describe group of application %q: %w", appID, g.Err)
	}
	return g, nil
}

// ResetOptions says what ResetApplication resets.
type ResetOptions struct {
	// Inputs are the input topics whose committed offsets are reset (the
	// application's user topics; repartition topics are deleted instead).
	// Every one must exist.
	Inputs []string
	// ToTime, when set, resets each input partition to its first offset
	// whose record timestamp is at or after it (the end offset when there
	// is none); zero: to the log start.
	ToTime time.Time
	// StateDir, when set, is the state directory (Config's StateDir) whose
	// local state of the application is removed: run ResetApplication on
	// every machine that ran an instance, or remove it there by hand.
	StateDir string
	// DryRun reports what would be done, and does nothing.
	DryRun bool
}

// ResetResult is what ResetApplication did (or, with DryRun, would do).
type ResetResult struct {
	// Offsets are the input partitions' new committed offsets; Previous
	// the ones they replace (-1: none).
	Offsets []ResetOffset
	// DeletedTopics are the application's internal topics (repartition
	// and changelog topics), sorted.
	DeletedTopics []string
	// RemovedStateDir is the application's local state directory, "" when
	// none was removed (no StateDir, or nothing there).
	RemovedStateDir string
	// DryRun is the options' DryRun.
	DryRun bool
}

// ResetOffset is one input partition's committed offset before and after a
// reset.
type ResetOffset struct {
	Topic     string
	Partition int32
	Previous  int64
	Offset    int64
}

// String lists what the reset did, one line per action.
func (r ResetResult) String() string {
	var b strings.Builder
	verb := map[bool]string{false: "", true: "would "}[r.DryRun]
	for _, o := range r.Offsets {
		prev := "none"
		if o.Previous >= 0 {
			prev = fmt.Sprint(o.Previous)
		}
		fmt.Fprintf(&b, "%sreset offset %s/%d: %s -> %d\n", verb, o.Topic, o.Partition, prev, o.Offset)
	}
	for _, tp := range r.DeletedTopics {
		fmt.Fprintf(&b, "%sdelete topic %s\n", verb, tp)
	}
	if r.RemovedStateDir != "" {
		fmt.Fprintf(&b, "%sremove state directory %s\n", verb, r.RemovedStateDir)
	}
	if b.Len() == 0 {
		b.WriteString("nothing to reset\n")
	}
	return b.String()
}

// isInternalTopic reports whether topic is one of application appID's
// internal topics: "<appID>-...-repartition" or "<appID>-...-changelog".
func isInternalTopic(appID, topic string) bool {
	return strings.HasPrefix(topic, appID+"-") &&
		(strings.HasSuffix(topic, "-repartition") || strings.HasSuffix(topic, "-changelog"))
}

// ResetApplication resets application appID so that its next run
// processes its input again (Kafka Streams' application reset tool): it
// sets the group's committed offsets of opts.Inputs to their log start or
// to opts.ToTime, deletes the application's internal topics (repartition
// and changelog topics named "<appID>-...") and the group's offsets of
// them, and removes its local state under opts.StateDir. It refuses, with
// an error wrapping ErrApplicationActive that names the members, while the
// application's group has members: stop every instance first. Output
// topics are left alone.
func ResetApplication(ctx context.Context, adm *kadm.Client, appID string, opts ResetOptions) (ResetResult, error) {
	res := ResetResult{DryRun: opts.DryRun}
	if !engine.LegalName.MatchString(appID) {
		return res, fmt.Errorf("%w: application id %q", ErrConfig, appID)
	}
	for _, tp := range opts.Inputs {
		if tp == "" || isInternalTopic(appID, tp) {
			return res, fmt.Errorf("%w: %q is not an input topic to reset", ErrConfig, tp)
		}
	}
	g, err := describeGroup(ctx, adm, appID)
	if err != nil {
		return res, err
	}
	if len(g.Members) > 0 {
		var ms []string
		for _, m := range g.Members {
			name := m.MemberID
			if meta, ok := m.Join.AsConsumer(); ok {
				if info, err := wire.DecodeMemberInfo(meta.UserData); err == nil {
					name = fmt.Sprintf("instance %s worker %d", info.InstanceID, info.Worker)
				}
			}
			ms = append(ms, fmt.Sprintf("%s (client %s, host %s)", name, m.ClientID, m.ClientHost))
		}
		slices.Sort(ms)
		return res, fmt.Errorf("%w: %q (group %s): %s; stop them first", ErrApplicationActive, appID, g.State, strings.Join(ms, ", "))
	}

	// New offsets of the inputs.
	if len(opts.Inputs) > 0 {
		var listed kadm.ListedOffsets
		if opts.ToTime.IsZero() {
			listed, err = adm.ListStartOffsets(ctx, opts.Inputs...)
		} else {
			listed, err = adm.ListOffsetsAfterMilli(ctx, opts.ToTime.UnixMilli(), opts.Inputs...)
		}
		if err != nil && len(listed) == 0 {
			return res, fmt.Errorf("kstream: list offsets of %v: %w", opts.Inputs, err)
		}
		prev, err := adm.FetchOffsets(ctx, appID)
		if err != nil {
			return res, fmt.Errorf("kstream: committed offsets of application %q: %w", appID, err)
		}
		var errs []error
		for _, tp := range opts.Inputs {
			ps, ok := listed[tp]
			if !ok {
				errs = append(errs, fmt.Errorf("%w: %q", ErrMissingTopic, tp))
				continue
			}
			for p, o := range ps {
				if o.Err != nil {
					errs = append(errs, fmt.Errorf("kstream: offsets of topic %q partition %d: %w", tp, p, o.Err))
					continue
				}
				ro := ResetOffset{Topic: tp, Partition: p, Previous: -1, Offset: o.Offset}
				if c, ok := prev.Lookup(tp, p); ok && c.Err == nil {
					ro.Previous = c.At
				}
				res.Offsets = append(res.Offsets, ro)
			}
		}
		if len(errs) > 0 {
			return res, errors.Join(errs...)
		}
		slices.SortFunc(res.Offsets, func(a, b ResetOffset) int {
			return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
		})
	}

	// Internal topics.
	all, err := adm.ListTopics(ctx)
	if err != nil {
		return res, fmt.Errorf("kstream: list topics: %w", err)
	}
	for tp := range all {
		if isInternalTopic(appID, tp) {
			res.DeletedTopics = append(res.DeletedTopics, tp)
		}
	}
	slices.Sort(res.DeletedTopics)

	if opts.StateDir != "" {
		dir, err := runtime.RemoveAppState(opts.StateDir, appID, true)
		if err != nil {
			return res, err
		}
		res.RemovedStateDir = dir
	}
	if opts.DryRun {
		return res, nil
	}

	if len(res.Offsets) > 0 {
		os := make(kadm.Offsets)
		for _, o := range res.Offsets {
			os.Add(kadm.Offset{Topic: o.Topic, Partition: o.Partition, At: o.Offset, LeaderEpoch: -1})
		}
		cr, err := adm.CommitOffsets(ctx, appID, os)
		if err == nil {
			err = cr.Error()
		}
		if err != nil {
			return res, fmt.Errorf("kstream: commit offsets of application %q: %w", appID, err)
		}
	}
	if len(res.DeletedTopics) > 0 {
		internal := make(kadm.TopicsSet)
		prev, err := adm.FetchOffsets(ctx, appID)
		if err != nil {
			return res, fmt.Errorf("kstream: committed offsets of application %q: %w", appID, err)
		}
		for tp, ps := range prev {
			if isInternalTopic(appID, tp) {
				for p := range ps {
					internal.Add(tp, p)
				}
			}
		}
		if len(internal) > 0 {
			dr, err := adm.DeleteOffsets(ctx, appID, internal)
			if err == nil {
				err = dr.Error()
			}
			if err != nil {
				return res, fmt.Errorf("kstream: delete offsets of the internal topics of application %q: %w", appID, err)
			}
		}
		dt, err := adm.DeleteTopics(ctx, res.DeletedTopics...)
		if err == nil {
			err = dt.Error()
		}
		if err != nil {
			return res, fmt.Errorf("kstream: delete internal topics of application %q: %w", appID, err)
		}
	}
	if opts.StateDir != "" {
		dir, err := runtime.RemoveAppState(opts.StateDir, appID, false)
		if err != nil {
			return res, err
		}
		res.RemovedStateDir = dir
	}
	return res, nil
}
