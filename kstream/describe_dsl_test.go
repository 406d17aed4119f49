package kstream_test

import (
	"strings"
	"testing"

	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
)

func TestDescribeAndMermaid(t *testing.T) {
	b := kstream.NewBuilder()
	s := kstream.From(b, "in", serde.String, serde.String)
	s.Filter(func(string, string) bool { return true }).To("out", serde.String, serde.String)
	kstream.From(b, "other", serde.String, serde.String, kstream.Named("other-source")).
		ToDynamic(func(kstream.Record[string, string]) string { return "x" }, serde.String, serde.String, kstream.Named("router"))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	want := `Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [in])
      --> KSTREAM-FILTER-0000000001
    Processor: KSTREAM-FILTER-0000000001 (stores: [])
      --> KSTREAM-SINK-0000000002
      <-- KSTREAM-SOURCE-0000000000
    Sink: KSTREAM-SINK-0000000002 (topic: out)
      <-- KSTREAM-FILTER-0000000001
   Sub-topology: 1
    Source: other-source (topics: [other])
      --> router
    Sink: router (topic: <chosen per record>)
      <-- other-source
`
	if got := topo.Describe().String(); got != want {
		t.Errorf("Describe:\n%s\nwant:\n%s", got, want)
	}
	m := topo.Describe().Mermaid()
	for _, line := range []string{
		"flowchart TD",
		`subgraph sub0 ["Sub-topology 0"]`,
		`n0["KSTREAM-SOURCE-0000000000"]`,
		`t0(["in"])`,
		`t1(["out"])`,
		`t2(["other"])`,
		"t0 --> n0",
		"n0 --> n1",
		"n1 --> n2",
		"n2 --> t1",
		"t2 --> n3",
		"n3 --> n4",
		`subgraph sub1 ["Sub-topology 1"]`,
	} {
		if !strings.Contains(m, line) {
			t.Errorf("Mermaid output lacks %q:\n%s", line, m)
		}
	}
	equal(t, "source topics", topo.SourceTopics(), []string{"in", "other"})
}
