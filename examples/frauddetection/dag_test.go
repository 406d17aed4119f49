package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

var update = flag.Bool("update", false, "rewrite testdata/default.golden from the DAG's run")

// The DAG end to end on an in-process broker, for the default seed: its
// whole output against testdata/default.golden (the README's). The run
// itself checks that every transaction was scored once with a verdict of
// each analyzer (checkScored); another seed must pass those checks too.
func TestFraudDAGOnEmbeddedBroker(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := runDAG(ctx, c.ListenAddrs(), DefaultSeed, "dag-test", t.TempDir(), slog.New(slog.DiscardHandler), &out); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "default.golden")
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	g, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != string(g) {
		t.Fatalf("output:\n%s\nwant %s:\n%s", got, golden, g)
	}
}

// Another seed's run passes the run's own checks: every transaction scored
// once, with a verdict of each analyzer, and the alerts those over the
// threshold.
func TestFraudDAGOtherSeed(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := runDAG(ctx, c.ListenAddrs(), 1, "dag-seed-1", t.TempDir(), slog.New(slog.DiscardHandler), &out); err != nil {
		t.Fatal(err)
	}
	if n := len(Generate(1).Txns); !strings.Contains(out.String(), fmt.Sprintf("\nscored %d transactions,", n)) {
		t.Fatalf("output does not report %d scored transactions:\n%s", n, out.String())
	}
}

// The scorer's aggregate is the same whatever order the verdicts come in,
// ignores a verdict an analyzer gave twice, and is complete with the last
// of the four.
func TestScoringOrderIndependent(t *testing.T) {
	txn := Txn{ID: "tx-001", Card: "card-01", AmountCents: 1234, Merchant: "paris-cafe", TS: time.UnixMilli(1_000_000).UTC()}
	findings := []Finding{
		{Txn: txn, Verdict: Verdict{Analyzer: AnalyzerSession, Score: 50, Reason: "s"}},
		{Txn: txn, Verdict: Verdict{Analyzer: AnalyzerSpend, Score: 60, Reason: "p"}},
		{Txn: txn, Verdict: Verdict{Analyzer: AnalyzerMerchant, Score: 30, Reason: "m"}},
		{Txn: txn, Verdict: Verdict{Analyzer: AnalyzerTravel, Score: 0, Reason: "t"}},
	}
	want := Scored{Txn: txn, Score: 140, Verdicts: []Verdict{findings[1].Verdict, findings[3].Verdict, findings[2].Verdict, findings[0].Verdict}}
	var perm func(k int)
	perm = func(k int) {
		if k == len(findings) {
			var s scoring
			for i, f := range findings {
				s = s.add(f)
				if !s.Added {
					t.Fatalf("verdict %d of %v not added", i, findings)
				}
				if complete := len(s.Verdicts) == len(Analyzers); complete != (i == len(findings)-1) {
					t.Fatalf("after %d verdicts, complete is %v", i+1, complete)
				}
			}
			if got := s.scored(); !reflect.DeepEqual(got, want) {
				t.Fatalf("order %v: scored %+v, want %+v", findings, got, want)
			}
			again := s.add(findings[0])
			if again.Added || !reflect.DeepEqual(again.scored(), want) {
				t.Fatalf("a verdict given twice: added %v, scored %+v", again.Added, again.scored())
			}
			return
		}
		for i := k; i < len(findings); i++ {
			findings[k], findings[i] = findings[i], findings[k]
			perm(k + 1)
			findings[k], findings[i] = findings[i], findings[k]
		}
	}
	perm(0)
}

// The README shows the DAG's topology as -mermaid prints it, and its run
// as the golden file holds it.
func TestREADMEShowsTheDAG(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	topo, err := DAG(dagTopics("<run>"))
	if err != nil {
		t.Fatal(err)
	}
	if m := "```mermaid\n" + topo.Describe().Mermaid() + "```\n"; !strings.Contains(string(readme), m) {
		t.Errorf("README.md does not show the topology:\n%s", m)
	}
	g, err := os.ReadFile(filepath.Join("testdata", "default.golden"))
	if err != nil {
		t.Fatal(err)
	}
	if run := "$ go run ./examples/frauddetection\n" + string(g) + "```\n"; !strings.Contains(string(readme), run) {
		t.Errorf("README.md does not show the run of testdata/default.golden")
	}
}
