package kstreamtest_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/kstream/kstreamtest"
	"github.com/streamwork-go/streamwork/serde"
)

// Run a small topology without a broker and read what it wrote.
func Example() {
	b := kstream.NewBuilder()
	lines := kstream.From(b, "lines", serde.String, serde.String)
	words := kstream.FlatMapValues(lines, strings.Fields)
	words.Filter(func(_, w string) bool { return len(w) > 3 }).
		To("long-words", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		panic(err)
	}

	d, err := kstreamtest.New(topo)
	if err != nil {
		panic(err)
	}
	defer d.Close()
	in := kstreamtest.Input(d, "lines", serde.String, serde.String)
	out := kstreamtest.Output(d, "long-words", serde.String, serde.String)
	_ = in.Pipe("doc-1", "the quick brown fox jumps", time.UnixMilli(1000))
	for _, kv := range out.KeyValues() {
		fmt.Println(kv.Key, kv.Value)
	}
	// Output:
	// doc-1 quick
	// doc-1 brown
	// doc-1 jumps
}
