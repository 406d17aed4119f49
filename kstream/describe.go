package kstream

import (
	"fmt"
	"strings"
)

// TopologyDescription is a read-only view of a Topology's structure.
type TopologyDescription struct {
	Subtopologies []SubtopologyDescription
}

// SubtopologyDescription describes one sub-topology: a connected part of the
// graph, run as one task per partition of its source topics.
type SubtopologyDescription struct {
	ID    int
	Nodes []NodeDescription // in the order the DSL created them
}

// NodeDescription describes one node.
type NodeDescription struct {
	Name string
	// Kind is "Source", "Processor" or "Sink".
	Kind string
	// Topics are a source's input topics or a sink's output topic.
	Topics []string
	// Dynamic is true for a sink whose topic is chosen per record.
	Dynamic      bool
	Stores       []string
	Predecessors []string
	Successors   []string
}

// Describe returns the topology's structure.
func (t *Topology) Describe() TopologyDescription {
	var d TopologyDescription
	for _, st := range t.t.Subs {
		sd := SubtopologyDescription{ID: st.ID}
		for _, n := range st.Nodes {
			nd := NodeDescription{
				Name:    n.Name,
				Kind:    n.Kind.String(),
				Topics:  append([]string(nil), n.Topics...),
				Dynamic: n.Dynamic,
				Stores:  append([]string(nil), n.Stores...),
			}
			for _, p := range n.Parents {
				nd.Predecessors = append(nd.Predecessors, p.Name)
			}
			for _, c := range n.Children {
				nd.Successors = append(nd.Successors, c.Name)
			}
			sd.Nodes = append(sd.Nodes, nd)
		}
		d.Subtopologies = append(d.Subtopologies, sd)
	}
	return d
}

// String renders the description as text, one node per block:
//
//	Topologies:
//	   Sub-topology: 0
//	    Source: KSTREAM-SOURCE-0000000000 (topics: [in])
//	      --> KSTREAM-FILTER-0000000001
//	    ...
func (d TopologyDescription) String() string {
	var b strings.Builder
	b.WriteString("Topologies:\n")
	for _, st := range d.Subtopologies {
		fmt.Fprintf(&b, "   Sub-topology: %d\n", st.ID)
		for _, n := range st.Nodes {
			switch n.Kind {
			case "Source":
				fmt.Fprintf(&b, "    Source: %s (topics: [%s])\n", n.Name, strings.Join(n.Topics, ", "))
			case "Sink":
				topic := strings.Join(n.Topics, ", ")
				if n.Dynamic {
					topic = "<chosen per record>"
				}
				fmt.Fprintf(&b, "    Sink: %s (topic: %s)\n", n.Name, topic)
			default:
				fmt.Fprintf(&b, "    Processor: %s (stores: [%s])\n", n.Name, strings.Join(n.Stores, ", "))
			}
			if len(n.Successors) > 0 {
				fmt.Fprintf(&b, "      --> %s\n", strings.Join(n.Successors, ", "))
			}
			if len(n.Predecessors) > 0 {
				fmt.Fprintf(&b, "      <-- %s\n", strings.Join(n.Predecessors, ", "))
			}
		}
	}
	return b.String()
}

// Mermaid renders the description as a Mermaid flowchart: one subgraph per
// sub-topology, topics as stadium-shaped nodes, stores as cylinders.
func (d TopologyDescription) Mermaid() string {
	var b strings.Builder
	b.WriteString("flowchart TD\n")
	ids := newMermaidIDs(d)
	edges, topics, stores := d.writeMermaidSubgraphs(&b, ids)
	d.writeMermaidTopicsAndStores(&b, ids, topics, stores)
	for _, e := range edges {
		b.WriteString(e)
		b.WriteByte('\n')
	}
	return b.String()
}

// mermaidIDs maps "<prefix>:<name>" to the Mermaid id of a node (prefix
// "n"), topic ("t") or store ("s").
type mermaidIDs map[string]string

// id returns the Mermaid id of the node, topic or store name.
func (ids mermaidIDs) id(prefix, name string) string { return ids[prefix+":"+name] }

// newMermaidIDs numbers the nodes, topics and stores of d for Mermaid.
func newMermaidIDs(d TopologyDescription) mermaidIDs {
	// Ids: nodes n0.. in order, then topics t0.. and stores s0.. in order of
	// first mention, so the output is stable.
	ids := mermaidIDs{}
	counts := map[string]int{}
	assign := func(prefix, name string) {
		key := prefix + ":" + name
		if _, ok := ids[key]; !ok {
			ids[key] = fmt.Sprintf("%s%d", prefix, counts[prefix])
			counts[prefix]++
		}
	}
	for _, st := range d.Subtopologies {
		for _, n := range st.Nodes {
			assign("n", n.Name)
		}
	}
	for _, st := range d.Subtopologies {
		for _, n := range st.Nodes {
			for _, tp := range n.Topics {
				assign("t", tp)
			}
			for _, s := range n.Stores {
				assign("s", s)
			}
		}
	}
	return ids
}

// writeMermaidSubgraphs writes a subgraph per sub-topology holding its
// nodes. It returns the edges to write after the topics and stores (node
// to node, topic to source, sink to topic, node to store), and the topics
// and stores mentioned, still to be written.
func (d TopologyDescription) writeMermaidSubgraphs(b *strings.Builder, ids mermaidIDs) (edges []string, topics, stores map[string]bool) {
	topics = map[string]bool{}
	stores = map[string]bool{}
	for _, st := range d.Subtopologies {
		fmt.Fprintf(b, "    subgraph sub%d [\"Sub-topology %d\"]\n", st.ID, st.ID)
		for _, n := range st.Nodes {
			fmt.Fprintf(b, "        %s[\"%s\"]\n", ids.id("n", n.Name), n.Name)
			for _, tp := range n.Topics {
				topics[tp] = true
			}
			for _, s := range n.Stores {
				stores[s] = true
			}
			edges = append(edges, mermaidEdges(n, ids)...)
		}
		b.WriteString("    end\n")
	}
	return edges, topics, stores
}

// mermaidEdges returns the edges of node n: to its successors, from its
// input topics (a source) or to its output topic (a sink), and to its
// stores.
func mermaidEdges(n NodeDescription, ids mermaidIDs) []string {
	var edges []string
	for _, c := range n.Successors {
		edges = append(edges, fmt.Sprintf("    %s --> %s", ids.id("n", n.Name), ids.id("n", c)))
	}
	for _, tp := range n.Topics {
		if n.Kind == "Source" {
			edges = append(edges, fmt.Sprintf("    %s --> %s", ids.id("t", tp), ids.id("n", n.Name)))
		} else {
			edges = append(edges, fmt.Sprintf("    %s --> %s", ids.id("n", n.Name), ids.id("t", tp)))
		}
	}
	for _, s := range n.Stores {
		edges = append(edges, fmt.Sprintf("    %s --- %s", ids.id("n", n.Name), ids.id("s", s)))
	}
	return edges
}

// writeMermaidTopicsAndStores writes each topic and store once, outside
// the subgraphs (a topic may link several of them), in order of first
// mention; it empties topics and stores as it goes.
func (d TopologyDescription) writeMermaidTopicsAndStores(b *strings.Builder, ids mermaidIDs, topics, stores map[string]bool) {
	for _, st := range d.Subtopologies {
		for _, n := range st.Nodes {
			for _, tp := range n.Topics {
				if topics[tp] {
					fmt.Fprintf(b, "    %s([\"%s\"])\n", ids.id("t", tp), tp)
					delete(topics, tp)
				}
			}
			for _, s := range n.Stores {
				if stores[s] {
					fmt.Fprintf(b, "    %s[(\"%s\")]\n", ids.id("s", s), s)
					delete(stores, s)
				}
			}
		}
	}
}
