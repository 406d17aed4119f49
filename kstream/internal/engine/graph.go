package engine

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
)

type NodeKind int

const (
	KindSource NodeKind = iota
	KindProcessor
	KindSink
)

func (k NodeKind) String() string {
	switch k {
	case KindSource:
		return "Source"
	case KindSink:
		return "Sink"
	default:
		return "Processor"
	}
}

// Node is one vertex of the topology graph. It is untyped: the typed code
// lives in the instance that newInstance makes for each task.
type Node struct {
	Name     string
	Kind     NodeKind
	Order    int
	Parents  []*Node
	Children []*Node
	Topics   []string // source: input topics; sink: the fixed output topic (if any)
	Dynamic  bool     // sink: topic chosen per record
	// internal: the topics are internal topic names, to be prefixed with
	// "<application id>-" by the runtime (repartition topics).
	Internal bool
	Stores   []string
	// Shed is a source's load-shedding policy (nil: none).
	Shed *ShedPolicy
	// newInstance makes the per-task instance of this node.
	NewInstance func() Instance
}

// Instance is a node as it runs inside one task.
type Instance interface {
	// init wires the instance to its task and its (already made) children.
	Init(t *Task, n *Node, children []Instance) error
	Close() error
}

// Topology is a built, immutable graph of source, processor and sink nodes,
// split into sub-topologies. It is safe for concurrent use.
type Topology struct {
	Nodes          []*Node
	Subs           []*Subtopology
	ByName         map[string]*Node
	Stores         map[string]*StoreSpec
	StoreOrder     []string
	InternalTopics []*InternalTopicSpec
	Globals        []*GlobalSpec
	// generatedNames are the generated names of stores and internal topics.
	GeneratedNames []string
	// storeSub is the sub-topology whose tasks hold each store that some
	// node uses.
	StoreSub map[string]*Subtopology
}

// Subtopology is a connected part of the graph; its tasks are its
// (sub-topology, partition) pairs.
type Subtopology struct {
	ID       int
	Nodes    []*Node // in creation order
	Sources  map[string]*Node
	Topics   []string        // sorted source topics (internal ones by short name)
	Internal map[string]bool // short names of the internal source topics
	Sinks    []string        // fixed external output topics
}

// sourceTopics returns the full names of the sub-topology's source topics
// for application appID, in the order of st.topics.
func (st *Subtopology) SourceTopics(appID string) []string {
	out := make([]string, len(st.Topics))
	for i, tp := range st.Topics {
		out[i] = ResolveTopic(appID, st.Internal[tp], tp)
	}
	return out
}

// LegalName matches the names Kafka allows in topic names: application ids,
// store names, instance ids.
var LegalName = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)

// GlobalSpec is a global table: its store, read from topic by every
// instance.
type GlobalSpec struct {
	Store    string
	Topic    string
	InMemory bool
}

// Graph is what a Builder collected: the nodes, stores, internal topics
// and global tables of a topology, before Build checks it.
type Graph struct {
	Nodes          []*Node
	ByName         map[string]*Node
	Stores         map[string]*StoreSpec
	StoreOrder     []string
	InternalTopics []*InternalTopicSpec
	Globals        []*GlobalSpec
	// GeneratedNames are the generated names of stores and internal
	// topics.
	GeneratedNames []string
}

// Build checks the graph and returns the Topology: the sub-topologies are
// the connected components over parent/child edges, merged where nodes
// share a store.
func Build(b *Graph) (*Topology, error) {
	if len(b.Nodes) == 0 {
		return nil, fmt.Errorf("%w: no streams defined", ErrTopology)
	}
	if err := checkStores(b); err != nil {
		return nil, err
	}
	t := &Topology{Nodes: b.Nodes, ByName: b.ByName, Stores: b.Stores, StoreOrder: b.StoreOrder,
		InternalTopics: b.InternalTopics, Globals: b.Globals, GeneratedNames: b.GeneratedNames,
		StoreSub: make(map[string]*Subtopology)}
	comp := components(b.Nodes)
	if err := t.makeSubtopologies(b.Nodes, comp); err != nil {
		return nil, err
	}
	if err := t.finishSubtopologies(); err != nil {
		return nil, err
	}
	return t, nil
}

// checkStores checks that every store a node uses was added.
func checkStores(b *Graph) error {
	for _, n := range b.Nodes {
		for _, s := range n.Stores {
			if _, ok := b.Stores[s]; !ok {
				return fmt.Errorf("%w: node %q uses store %q, which was never added", ErrTopology, n.Name, s)
			}
		}
	}
	return nil
}

// components numbers the connected components of the graph over
// parent/child edges, then merges those whose nodes share a store (a store
// lives in one sub-topology's tasks).
func components(nodes []*Node) map[*Node]int {
	comp := make(map[*Node]int)
	var walk func(n *Node, c int)
	walk = func(n *Node, c int) {
		if _, ok := comp[n]; ok {
			return
		}
		comp[n] = c
		for _, x := range n.Children {
			walk(x, c)
		}
		for _, x := range n.Parents {
			walk(x, c)
		}
	}
	ncomp := 0
	for _, n := range nodes {
		if _, ok := comp[n]; !ok {
			walk(n, ncomp)
			ncomp++
		}
	}
	storeOwner := map[string]*Node{}
	for _, n := range nodes {
		for _, s := range n.Stores {
			if o, ok := storeOwner[s]; ok && comp[o] != comp[n] {
				// merge n's component into o's
				from, to := comp[n], comp[o]
				for m, c := range comp {
					if c == from {
						comp[m] = to
					}
				}
			} else if !ok {
				storeOwner[s] = n
			}
		}
	}
	return comp
}

// makeSubtopologies makes one sub-topology per component, numbered by
// their first node so ids are stable, with their nodes, source topics and
// fixed sinks. A topic read by two sources is an ErrTopology.
func (t *Topology) makeSubtopologies(nodes []*Node, comp map[*Node]int) error {
	ids := map[int]int{}
	topicOwner := map[string]int{}
	for _, n := range nodes {
		c := comp[n]
		id, ok := ids[c]
		if !ok {
			id = len(t.Subs)
			ids[c] = id
			t.Subs = append(t.Subs, &Subtopology{ID: id, Sources: map[string]*Node{}, Internal: map[string]bool{}})
		}
		st := t.Subs[id]
		st.Nodes = append(st.Nodes, n)
		switch n.Kind {
		case KindSource:
			for _, tp := range n.Topics {
				if prev, dup := topicOwner[tp]; dup {
					return fmt.Errorf("%w: topic %q is read by more than one source (sub-topologies %d and %d); read it once and fan out", ErrTopology, tp, prev, id)
				}
				topicOwner[tp] = id
				st.Sources[tp] = n
				st.Topics = append(st.Topics, tp)
				if n.Internal {
					st.Internal[tp] = true
				}
			}
		case KindSink:
			if !n.Dynamic && !n.Internal && len(n.Topics) == 1 && !slices.Contains(st.Sinks, n.Topics[0]) {
				st.Sinks = append(st.Sinks, n.Topics[0])
			}
		}
	}
	return nil
}

// finishSubtopologies sorts each sub-topology's topics, refuses one without
// a source and records which sub-topology holds each store.
func (t *Topology) finishSubtopologies() error {
	for _, st := range t.Subs {
		sort.Strings(st.Topics)
		if len(st.Topics) == 0 {
			return fmt.Errorf("%w: sub-topology %d has no source", ErrTopology, st.ID)
		}
		for _, n := range st.Nodes {
			for _, s := range n.Stores {
				t.StoreSub[s] = st
			}
		}
	}
	return nil
}

// SourceTopics returns every user topic the topology reads, sorted
// (internal repartition topics are left out).
func (t *Topology) SourceTopics() []string {
	var out []string
	for _, st := range t.Subs {
		for _, tp := range st.Topics {
			if !st.Internal[tp] {
				out = append(out, tp)
			}
		}
	}
	sort.Strings(out)
	return out
}

// sourceTopicsFor returns every topic the topology reads under application
// appID, internal ones by full name, sorted.
func (t *Topology) SourceTopicsFor(appID string) []string {
	var out []string
	for _, st := range t.Subs {
		out = append(out, st.SourceTopics(appID)...)
	}
	sort.Strings(out)
	return out
}

// subtopologyFor returns the sub-topology reading topic (a full name) under
// application appID, or nil.
func (t *Topology) SubtopologyFor(appID, topic string) *Subtopology {
	for _, st := range t.Subs {
		for _, tp := range st.SourceTopics(appID) {
			if tp == topic {
				return st
			}
		}
	}
	return nil
}
