package kstream

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Builder collects the streams and operators of a topology. DSL functions
// record problems (a duplicate name, an empty topic) in the Builder; Build
// returns them. A Builder is not safe for concurrent use.
type Builder struct {
	nodes   []*node
	byName  map[string]*node
	counter int
	errs    []error
	built   bool

	stores         map[string]*storeSpec
	storeOrder     []string
	internalTopics []*internalTopicSpec
	// generatedNames are the generated names of stores and internal
	// topics.
	generatedNames []string
	requireNames   bool
	globals        []*globalSpec
	// unclaimedUseStores counts UseStores options given to operators that
	// did not take them (only Process does; see Builder.useStores).
	unclaimedUseStores int
}

// NewBuilder returns an empty Builder.
func NewBuilder(opts ...BuilderOpt) *Builder {
	b := &Builder{byName: make(map[string]*node)}
	for _, o := range opts {
		o.applyBuilder(b)
	}
	return b
}

// BuilderOpt configures a Builder.
type BuilderOpt interface {
	applyBuilder(*Builder)
}

type builderOptFunc func(*Builder)

func (f builderOptFunc) applyBuilder(b *Builder) { f(b) }

// RequireExplicitNames makes Build fail (with ErrUnnamed, listing them) when
// a state store or an internal topic would get a generated name. Generated
// names follow the order of the DSL calls, so a changed topology can rename
// a store or a repartition topic and silently orphan its state; with this
// option every one of them must be named (StoreName, Named).
func RequireExplicitNames() BuilderOpt {
	return builderOptFunc(func(b *Builder) { b.requireNames = true })
}

type nodeKind int

const (
	kindSource nodeKind = iota
	kindProcessor
	kindSink
)

func (k nodeKind) String() string {
	switch k {
	case kindSource:
		return "Source"
	case kindSink:
		return "Sink"
	default:
		return "Processor"
	}
}

// node is one vertex of the topology graph. It is untyped: the typed code
// lives in the instance that newInstance makes for each task.
type node struct {
	name     string
	kind     nodeKind
	order    int
	parents  []*node
	children []*node
	topics   []string // source: input topics; sink: the fixed output topic (if any)
	dynamic  bool     // sink: topic chosen per record
	// internal: the topics are internal topic names, to be prefixed with
	// "<application id>-" by the runtime (repartition topics).
	internal bool
	stores   []string
	// newInstance makes the per-task instance of this node.
	newInstance func() nodeInstance
}

// nodeInstance is a node as it runs inside one task.
type nodeInstance interface {
	// init wires the instance to its task and its (already made) children.
	init(t *task, n *node, children []nodeInstance) error
	close() error
}

// NodeOpt configures one operator of the DSL. Options that do not apply to an
// operator make Build fail with ErrOptionNotApplicable.
type NodeOpt interface {
	applyNode(*nodeCfg)
}

type nodeCfg struct {
	name       string
	storeName  string
	inMemory   bool
	partitions int32
	roundRobin bool
	tsExtract  any      // func(Record[K, V]) (time.Time, error) of the source's types
	stores     []string // UseStores
}

type nodeOptFunc func(*nodeCfg)

func (f nodeOptFunc) applyNode(c *nodeCfg) { f(c) }

// Named gives an operator a name. Names must be unique within a topology;
// unnamed operators get generated names of the form KSTREAM-<OP>-<10 digits>,
// numbered in the order the DSL calls were made, so the same program always
// generates the same names.
func Named(name string) NodeOpt {
	return nodeOptFunc(func(c *nodeCfg) { c.name = name })
}

func (b *Builder) nodeCfg(opts []NodeOpt) nodeCfg {
	var c nodeCfg
	for _, o := range opts {
		o.applyNode(&c)
	}
	if len(c.stores) > 0 {
		b.unclaimedUseStores++
	}
	return c
}

// addNode registers a node with the given (or a generated) name under parents.
func (b *Builder) addNode(op string, name string, kind nodeKind, parents []*node, inst func() nodeInstance) *node {
	if b.built {
		b.errs = append(b.errs, fmt.Errorf("%w: %s added after Build", ErrTopology, op))
	}
	idx := b.counter
	b.counter++
	if name == "" {
		name = fmt.Sprintf("KSTREAM-%s-%010d", op, idx)
	}
	n := &node{name: name, kind: kind, order: idx, newInstance: inst}
	if _, dup := b.byName[name]; dup {
		b.errs = append(b.errs, fmt.Errorf("%w: %q", ErrDuplicateName, name))
		name = fmt.Sprintf("%s#%d", name, idx)
		n.name = name
	}
	for _, p := range parents {
		if p == nil {
			continue
		}
		n.parents = append(n.parents, p)
		p.children = append(p.children, n)
	}
	b.byName[name] = n
	b.nodes = append(b.nodes, n)
	return n
}

func (b *Builder) errorf(format string, args ...any) {
	b.errs = append(b.errs, fmt.Errorf(format, args...))
}

// Topology is a built, immutable graph of source, processor and sink nodes,
// split into sub-topologies. It is safe for concurrent use.
type Topology struct {
	nodes          []*node
	subs           []*subtopology
	byName         map[string]*node
	stores         map[string]*storeSpec
	storeOrder     []string
	internalTopics []*internalTopicSpec
	globals        []*globalSpec
	// generatedNames are the generated names of stores and internal topics.
	generatedNames []string
	// storeSub is the sub-topology whose tasks hold each store that some
	// node uses.
	storeSub map[string]*subtopology
}

// subtopology is a connected part of the graph; its tasks are its
// (sub-topology, partition) pairs.
type subtopology struct {
	id       int
	nodes    []*node // in creation order
	sources  map[string]*node
	topics   []string        // sorted source topics (internal ones by short name)
	internal map[string]bool // short names of the internal source topics
	sinks    []string        // fixed external output topics
}

// sourceTopics returns the full names of the sub-topology's source topics
// for application appID, in the order of st.topics.
func (st *subtopology) sourceTopics(appID string) []string {
	out := make([]string, len(st.topics))
	for i, tp := range st.topics {
		out[i] = resolveTopic(appID, st.internal[tp], tp)
	}
	return out
}

// Build checks the graph and returns the Topology. It returns every problem
// the DSL calls recorded, joined.
func (b *Builder) Build() (*Topology, error) {
	if b.requireNames && len(b.generatedNames) > 0 {
		b.errs = append(b.errs, fmt.Errorf("%w: %s", ErrUnnamed, strings.Join(b.generatedNames, ", ")))
	}
	if len(b.errs) > 0 {
		return nil, joinErrors(b.errs)
	}
	if len(b.nodes) == 0 {
		return nil, fmt.Errorf("%w: no streams defined", ErrTopology)
	}
	if b.unclaimedUseStores > 0 {
		return nil, fmt.Errorf("%w: UseStores applies to Process only", ErrOptionNotApplicable)
	}
	b.built = true
	t := &Topology{nodes: b.nodes, byName: b.byName, stores: b.stores, storeOrder: b.storeOrder,
		internalTopics: b.internalTopics, globals: b.globals, generatedNames: b.generatedNames,
		storeSub: make(map[string]*subtopology)}
	for _, n := range b.nodes {
		for _, s := range n.stores {
			if _, ok := b.stores[s]; !ok {
				return nil, fmt.Errorf("%w: node %q uses store %q, which was never added", ErrTopology, n.name, s)
			}
		}
	}
	// Connected components over parent/child edges.
	comp := make(map[*node]int)
	var walk func(n *node, c int)
	walk = func(n *node, c int) {
		if _, ok := comp[n]; ok {
			return
		}
		comp[n] = c
		for _, x := range n.children {
			walk(x, c)
		}
		for _, x := range n.parents {
			walk(x, c)
		}
	}
	// Nodes sharing a store belong to one sub-topology too.
	storeOwner := map[string]*node{}
	ncomp := 0
	for _, n := range b.nodes {
		if _, ok := comp[n]; !ok {
			walk(n, ncomp)
			ncomp++
		}
	}
	for _, n := range b.nodes {
		for _, s := range n.stores {
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
	// Number components by their first node, so ids are stable.
	ids := map[int]int{}
	topicOwner := map[string]int{}
	for _, n := range b.nodes {
		c := comp[n]
		id, ok := ids[c]
		if !ok {
			id = len(t.subs)
			ids[c] = id
			t.subs = append(t.subs, &subtopology{id: id, sources: map[string]*node{}, internal: map[string]bool{}})
		}
		st := t.subs[id]
		st.nodes = append(st.nodes, n)
		switch n.kind {
		case kindSource:
			for _, tp := range n.topics {
				if prev, dup := topicOwner[tp]; dup {
					return nil, fmt.Errorf("%w: topic %q is read by more than one source (sub-topologies %d and %d); read it once and fan out", ErrTopology, tp, prev, id)
				}
				topicOwner[tp] = id
				st.sources[tp] = n
				st.topics = append(st.topics, tp)
				if n.internal {
					st.internal[tp] = true
				}
			}
		case kindSink:
			if !n.dynamic && !n.internal && len(n.topics) == 1 && !slices.Contains(st.sinks, n.topics[0]) {
				st.sinks = append(st.sinks, n.topics[0])
			}
		}
	}
	for _, st := range t.subs {
		sort.Strings(st.topics)
		if len(st.topics) == 0 {
			return nil, fmt.Errorf("%w: sub-topology %d has no source", ErrTopology, st.id)
		}
		for _, n := range st.nodes {
			for _, s := range n.stores {
				t.storeSub[s] = st
			}
		}
	}
	return t, nil
}

// SourceTopics returns every user topic the topology reads, sorted
// (internal repartition topics are left out).
func (t *Topology) SourceTopics() []string {
	var out []string
	for _, st := range t.subs {
		for _, tp := range st.topics {
			if !st.internal[tp] {
				out = append(out, tp)
			}
		}
	}
	sort.Strings(out)
	return out
}

// sourceTopicsFor returns every topic the topology reads under application
// appID, internal ones by full name, sorted.
func (t *Topology) sourceTopicsFor(appID string) []string {
	var out []string
	for _, st := range t.subs {
		out = append(out, st.sourceTopics(appID)...)
	}
	sort.Strings(out)
	return out
}

// subtopologyFor returns the sub-topology reading topic (a full name) under
// application appID, or nil.
func (t *Topology) subtopologyFor(appID, topic string) *subtopology {
	for _, st := range t.subs {
		for _, tp := range st.sourceTopics(appID) {
			if tp == topic {
				return st
			}
		}
	}
	return nil
}
