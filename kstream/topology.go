package kstream

import (
	"fmt"
	"strings"
	"time"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
)

// Builder collects the streams and operators of a topology. DSL functions
// record problems (a duplicate name, an empty topic) in the Builder; Build
// returns them. A Builder is not safe for concurrent use.
type Builder struct {
	// g is the graph the DSL calls add to: nodes, stores, internal topics,
	// global tables, generated names.
	g       engine.Graph
	counter int
	errs    []error
	built   bool

	requireNames bool
	// unclaimedUseStores counts UseStores options given to operators that
	// did not take them (only Process does; see Builder.useStores).
	unclaimedUseStores int
	// unclaimedShed counts ShedLoad options given to operators other than
	// sources.
	unclaimedShed int
}

// NewBuilder returns an empty Builder.
func NewBuilder(opts ...BuilderOpt) *Builder {
	b := &Builder{g: engine.Graph{ByName: make(map[string]*node)}}
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
	tsExtract  any           // func(Record[K, V]) (time.Time, error) of the source's types
	stores     []string      // UseStores
	emitFinal  bool          // EmitFinal
	lateTopic  string        // LateRecordsTo
	idleClose  time.Duration // CloseWindowsWhenIdle
	versioned  time.Duration // Versioned
	versionSet bool          // Versioned was given (its duration may be invalid)
	joinGrace  time.Duration // JoinGrace
	shed       *ShedPolicy   // ShedLoad
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
	if c.shed != nil {
		b.unclaimedShed++
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
	n := &node{Name: name, Kind: kind, Order: idx, NewInstance: inst}
	if _, dup := b.g.ByName[name]; dup {
		b.errs = append(b.errs, fmt.Errorf("%w: %q", ErrDuplicateName, name))
		name = fmt.Sprintf("%s#%d", name, idx)
		n.Name = name
	}
	for _, p := range parents {
		if p == nil {
			continue
		}
		n.Parents = append(n.Parents, p)
		p.Children = append(p.Children, n)
	}
	b.g.ByName[name] = n
	b.g.Nodes = append(b.g.Nodes, n)
	return n
}

func (b *Builder) errorf(format string, args ...any) {
	b.errs = append(b.errs, fmt.Errorf(format, args...))
}

// Build checks the graph and returns the Topology. It returns every problem
// the DSL calls recorded, joined.
func (b *Builder) Build() (*Topology, error) {
	if b.requireNames && len(b.g.GeneratedNames) > 0 {
		b.errs = append(b.errs, fmt.Errorf("%w: %s", ErrUnnamed, strings.Join(b.g.GeneratedNames, ", ")))
	}
	if len(b.errs) > 0 {
		return nil, engine.JoinErrors(b.errs)
	}
	if b.unclaimedUseStores > 0 {
		return nil, fmt.Errorf("%w: UseStores applies to Process only", ErrOptionNotApplicable)
	}
	if b.unclaimedShed > 0 {
		return nil, fmt.Errorf("%w: ShedLoad applies to From and FromTopics only", ErrOptionNotApplicable)
	}
	t, err := engine.Build(&b.g)
	if err != nil {
		return nil, err
	}
	b.built = true
	return &Topology{t: t}, nil
}

// Topology is a built, immutable graph of source, processor and sink nodes,
// split into sub-topologies. It is safe for concurrent use.
type Topology struct {
	t *engine.Topology
}

// SourceTopics returns every user topic the topology reads, sorted
// (internal repartition topics are left out).
func (t *Topology) SourceTopics() []string { return t.t.SourceTopics() }

// addStore registers a store; a second store of the same name is an error.
func (b *Builder) addStore(spec *storeSpec) {
	if b.g.Stores == nil {
		b.g.Stores = make(map[string]*storeSpec)
	}
	if _, dup := b.g.Stores[spec.Name]; dup {
		b.errorf("%w: store %q", ErrDuplicateName, spec.Name)
		return
	}
	if spec.Name == "" || !engine.LegalName.MatchString(spec.Name) {
		b.errorf("%w: store name %q may only hold letters, digits, '.', '_' and '-'", ErrTopology, spec.Name)
		return
	}
	b.g.Stores[spec.Name] = spec
	b.g.StoreOrder = append(b.g.StoreOrder, spec.Name)
}

// connectStore records that node n reads and writes the store named name.
// Nodes sharing a store end up in one sub-topology.
func (b *Builder) connectStore(n *node, name string) {
	n.Stores = append(n.Stores, name)
}

// addInternalTopic registers an internal topic; nodes that read or write it
// carry its short name in node.topics and internal: true.
func (b *Builder) addInternalTopic(name string, partitions int32) {
	for _, it := range b.g.InternalTopics {
		if it.Name == name {
			b.errorf("%w: internal topic %q", ErrDuplicateName, name)
			return
		}
	}
	b.g.InternalTopics = append(b.g.InternalTopics, &internalTopicSpec{Name: name, Partitions: partitions})
}
