package kstream

import "github.com/streamwork-go/streamwork/kstream/internal/engine"

// Branch is one named branch of Split: the records for which Pred returns
// true (and no earlier branch's did).
type Branch[K, V any] struct {
	Name string
	Pred func(K, V) bool
}

// DefaultBranch names the branch that takes the records no other branch took.
// Without one, such records are dropped.
func DefaultBranch[K, V any](name string) Branch[K, V] { return Branch[K, V]{Name: name} }

// Split routes each record to the first branch whose predicate it satisfies
// and returns the branches by name. The split node is named name (generated
// if empty); each branch's stream starts at a node named name+branch.Name.
// Branch names must be unique and non-empty; at most one branch (the
// default) may have a nil predicate, and it must be last.
func (s Stream[K, V]) Split(name string, branches ...Branch[K, V]) map[string]Stream[K, V] {
	s.valid("Split")
	preds := make([]func(K, V) bool, len(branches))
	seen := map[string]bool{}
	for i, br := range branches {
		if br.Name == "" || seen[br.Name] {
			s.b.errorf("%w: Split branch %d has an empty or repeated name %q", ErrTopology, i, br.Name)
		}
		seen[br.Name] = true
		if br.Pred == nil && i != len(branches)-1 {
			s.b.errorf("%w: Split default branch %q must be last", ErrTopology, br.Name)
		}
		preds[i] = br.Pred
	}
	split := s.b.addNode("BRANCH", name, engine.KindProcessor, []*node{s.n}, func() nodeInstance {
		return &statelessNode[K, V, K, V]{fn: func(r Record[K, V], d *downstream[K, V]) {
			for i, p := range preds {
				if p == nil || p(r.Key, r.Value) {
					d.ForwardIndex(i, r)
					return
				}
			}
		}}
	})
	out := make(map[string]Stream[K, V], len(branches))
	for _, br := range branches {
		bn := s.b.addNode("BRANCH-CHILD", split.Name+br.Name, engine.KindProcessor, []*node{split}, func() nodeInstance {
			return &statelessNode[K, V, K, V]{fn: func(r Record[K, V], d *downstream[K, V]) { d.Forward(r) }}
		})
		out[br.Name] = Stream[K, V]{b: s.b, n: bn, keyChanged: s.keyChanged}
	}
	return out
}
