package main

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
)

// The DAG's analyzers, in the order a scored transaction lists their
// verdicts.
const (
	AnalyzerSpend    = "spend"
	AnalyzerTravel   = "travel"
	AnalyzerMerchant = "merchant"
	AnalyzerSession  = "session"
)

// Analyzers is every analyzer of the DAG: a transaction is scored once each
// has given its verdict.
var Analyzers = []string{AnalyzerSpend, AnalyzerTravel, AnalyzerMerchant, AnalyzerSession}

// The verdicts' scores and the alert threshold. A transaction's score is
// the sum of its verdicts'; one scoring AlertScore or more is an alert.
const (
	ScoreHighSpend     = 60 // the card's spend in the minute so far is over SpendLimitCents
	ScoreImpossible    = 70 // the leg from the card's previous transaction is impossible travel
	ScoreManyMerchants = 50 // the card's session so far is at ManyMerchants merchants or more
	ScoreUnknown       = 20 // the merchant is not in the merchants table
	AlertScore         = 50
	// TrackSpan: the travel analyzer keeps a card's transactions of this
	// span of event time before its newest one.
	TrackSpan = 15 * time.Minute
)

// RiskScores is the score of each merchant risk category.
var RiskScores = map[string]int{"low": 0, "medium": 10, "high": 30}

// kindRisk is the risk category of each kind of merchant: fuel pumps are
// unattended, where stolen cards are tried first.
var kindRisk = map[string]string{
	"bakery": "low", "grocer": "low", "bookshop": "low", "cafe": "low",
	"pharmacy": "medium", "fuel": "high",
}

// MerchantInfo is a merchant's entry in the merchants table (its key is
// Name).
type MerchantInfo struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	City string `json:"city"`
	// Risk is the merchant's category: a key of RiskScores.
	Risk string `json:"risk"`
}

// MerchantTable returns the merchants table's entries: the merchants of
// the European cities, with their risk categories. The New York merchants
// are not in it.
func MerchantTable(ms []Merchant) []MerchantInfo {
	var out []MerchantInfo
	for _, m := range ms {
		if m.City == "new-york" {
			continue
		}
		out = append(out, MerchantInfo{Name: m.Name, Kind: m.Kind, City: m.City, Risk: kindRisk[m.Kind]})
	}
	return out
}

// Verdict is one analyzer's judgement of one transaction.
type Verdict struct {
	Analyzer string `json:"analyzer"`
	Score    int    `json:"score"`
	Reason   string `json:"reason"`
}

// Finding is a verdict with the transaction it judges: the value of the
// verdict streams, keyed by the transaction's ID.
type Finding struct {
	Txn     Txn     `json:"txn"`
	Verdict Verdict `json:"verdict"`
}

// Scored is a transaction with every analyzer's verdict (in Analyzers
// order) and their total: the value of the scores and alerts topics, keyed
// by the transaction's ID.
type Scored struct {
	Txn      Txn       `json:"txn"`
	Score    int       `json:"score"`
	Verdicts []Verdict `json:"verdicts"`
}

// scoring is the fan-in's aggregate per transaction: the verdicts so far,
// and whether the last one was new.
type scoring struct {
	Txn      Txn       `json:"txn"`
	Verdicts []Verdict `json:"verdicts"`
	// Added: the last finding added a verdict (a replayed one, from a
	// retry after a failure under at-least-once, changes nothing).
	Added bool `json:"added"`
}

// SpendSoFar is a card's spend in one minute, in the order the
// transactions arrived, and the last of them.
type SpendSoFar struct {
	Cents int64 `json:"cents"`
	Count int   `json:"count"`
	Last  Txn   `json:"last"`
}

// TravelTrack is a card's transactions of the last TrackSpan of event
// time, sorted by time, and the last one added.
type TravelTrack struct {
	Points []Point `json:"points"`
	Last   Txn     `json:"last"`
}

// SessionSoFar is a card's session of activity: its transactions, its
// distinct merchants (sorted), and the last transaction added.
type SessionSoFar struct {
	Count     int      `json:"count"`
	Merchants []string `json:"merchants"`
	Last      Txn      `json:"last"`
}

// DAGTopics are the DAG's topics.
type DAGTopics struct {
	// Input: the transactions, keyed by card; Merchants: the merchants
	// table, keyed by name.
	Input, Merchants string
	// LateSpend and LateSessions: the transactions the spend and session
	// windows found late, written by the windows and read back by the
	// DAG, so that those transactions have a verdict too.
	LateSpend, LateSessions string
	// Scores: every scored transaction; Alerts: those scoring AlertScore
	// or more.
	Scores, Alerts string
}

// VerdictsPartitions is the partition count of the verdicts' repartition
// topic, by transaction ID. The scoring is order-independent, so it does
// not matter in which order the partitions' tasks see the verdicts.
const VerdictsPartitions = 2

// DAG is the fraud-detection job as a DAG: the transactions fan out to
// four analyzers, each giving one verdict per transaction, keyed by its
// ID; the verdicts fan in (Merge, then Repartition by ID) to a scorer that
// aggregates them per transaction (GroupByKey, Aggregate) and emits the
// transaction once all four reported; scored transactions go to
// t.Scores, those scoring AlertScore or more to t.Alerts as well.
//
// The analyzers judge each transaction as it arrives, from their state so
// far, so they emit on every update: the App must run with caching off
// (CacheMaxBytes(0)), or a cache would merge the updates of one window or
// card between commits and drop verdicts.
//
//   - spend: each card's spend per minute (WindowedBy, Tumbling, with
//     WindowedAggregate); a transaction that takes the minute over
//     SpendLimitCents scores ScoreHighSpend.
//   - travel: each card's recent transactions (GroupByKey, Aggregate: a
//     keyed store of the card's track, no windows, so no transaction is
//     late); the leg from the transaction's predecessor in event time is
//     impossible travel at over MaxSpeedKmh for MinTravelKm or more.
//   - merchant: the transaction re-keyed by merchant and joined with the
//     merchants table (TableFrom, LeftJoinTable): the merchant's risk
//     category, or unknown. A left join, so that a transaction at a
//     merchant missing from the table still has a verdict: with an inner
//     join the scorer would wait for it forever.
//   - session: each card's sessions of activity (WindowedBy, Session, with
//     SessionAggregate); a session at ManyMerchants merchants or more so
//     far scores ScoreManyMerchants.
//
// A window refuses a transaction that comes after its window closed (end +
// grace): then it gives no update, and no verdict. So the spend and session
// windows write their late transactions to a topic (LateRecordsTo) that the
// DAG reads back and judges without the window: spend by the transaction's
// amount alone, the session not at all. Every transaction thus gets
// exactly one verdict of each analyzer.
//
// The fan-in is an aggregate keyed by transaction ID rather than a chain of
// stream-stream joins: a join matches records by timestamp within join
// windows, and drops what comes after its grace, but the verdicts of one
// transaction carry different timestamps (a window's update is stamped
// with the window's latest record, a session's with its end) and the
// verdicts of a late transaction arrive last; the aggregate waits for all
// four whatever their times and order. Its store keeps a transaction
// forever; a production job would bound it (a window over the
// transaction's time with a grace as long as the slowest analyzer).
func DAG(t DAGTopics) (*kstream.Topology, error) {
	for _, tp := range []string{t.Input, t.Merchants, t.LateSpend, t.LateSessions, t.Scores, t.Alerts} {
		if tp == "" {
			return nil, errors.New("frauddetection: empty topic name")
		}
	}
	b := kstream.NewBuilder()
	txns := kstream.From(b, t.Input, serde.String, serde.JSON[Txn](), kstream.Named("transactions"),
		kstream.WithTimestamps(txnTime))
	byCard := kstream.GroupByKey(txns, serde.String, serde.JSON[Txn]())
	merchants := kstream.TableFrom(b, t.Merchants, serde.String, serde.JSON[MerchantInfo](),
		kstream.Named("merchants"), kstream.StoreName("merchants"))

	verdicts := spendVerdicts(b, byCard, t.LateSpend).MergeNamed("verdicts",
		travelVerdicts(byCard),
		merchantVerdicts(txns, merchants),
		sessionVerdicts(b, byCard, t.LateSessions))
	byTxn := kstream.Repartition(verdicts, serde.String, serde.JSON[Finding](),
		kstream.Named("verdicts-by-txn"), kstream.Partitions(VerdictsPartitions))
	scores := kstream.Aggregate(kstream.GroupByKey(byTxn, serde.String, serde.JSON[Finding]()),
		func() scoring { return scoring{} },
		func(_ string, f Finding, s scoring) scoring { return s.add(f) },
		serde.JSON[scoring](),
		kstream.Named("score"), kstream.StoreName("score"))
	scored := kstream.FlatMapValues(scores.ToStream(kstream.Named("score-updates")), func(s scoring) []Scored {
		if !s.Added || len(s.Verdicts) < len(Analyzers) {
			return nil // waiting for more verdicts, or a replayed one
		}
		return []Scored{s.scored()}
	}, kstream.Named("scored"))
	scored.To(t.Scores, serde.String, serde.JSON[Scored](), kstream.Named("scores"))
	scored.Filter(func(_ string, s Scored) bool { return s.Score >= AlertScore }, kstream.Named("over-threshold")).
		To(t.Alerts, serde.String, serde.JSON[Scored](), kstream.Named("alerts"))
	return b.Build()
}

func txnTime(r kstream.Record[string, Txn]) (time.Time, error) {
	if r.Value.TS.IsZero() {
		return time.Time{}, fmt.Errorf("transaction of card %q has no ts", r.Key)
	}
	return r.Value.TS, nil
}

// finding returns the verdict on t keyed by t's ID.
func finding(t Txn, analyzer string, score int, reason string) []kstream.KeyValue[string, Finding] {
	return []kstream.KeyValue[string, Finding]{{Key: t.ID, Value: Finding{Txn: t,
		Verdict: Verdict{Analyzer: analyzer, Score: score, Reason: reason}}}}
}

// lateVerdicts reads back the transactions a window found late and judges
// them with judge.
func lateVerdicts(b *kstream.Builder, topic, name string, judge func(Txn) []kstream.KeyValue[string, Finding]) kstream.Stream[string, Finding] {
	late := kstream.From(b, topic, serde.String, serde.JSON[Txn](), kstream.Named(name), kstream.WithTimestamps(txnTime))
	return kstream.FlatMap(late, func(_ string, t Txn) []kstream.KeyValue[string, Finding] { return judge(t) },
		kstream.Named(name+"-verdicts"))
}

// spendVerdicts judges each transaction by its card's spend in its minute
// so far (in the order the transactions arrived), and a late one by its
// amount alone.
func spendVerdicts(b *kstream.Builder, byCard kstream.GroupedStream[string, Txn], late string) kstream.Stream[string, Finding] {
	spend := kstream.WindowedAggregate(kstream.WindowedBy(byCard, SpendWindows),
		func() SpendSoFar { return SpendSoFar{} },
		func(_ string, t Txn, s SpendSoFar) SpendSoFar {
			return SpendSoFar{Cents: s.Cents + t.AmountCents, Count: s.Count + 1, Last: t}
		},
		serde.JSON[SpendSoFar](),
		kstream.LateRecordsTo(late),
		kstream.Named("spend-so-far"), kstream.StoreName("spend-so-far"))
	onTime := kstream.FlatMap(spend.ToStream(kstream.Named("spend-updates")), func(w kstream.Windowed[string], s SpendSoFar) []kstream.KeyValue[string, Finding] {
		if s.Count == 0 {
			return nil // a tombstone: tumbling windows have none
		}
		score := 0
		if s.Cents > SpendLimitCents {
			score = ScoreHighSpend
		}
		return finding(s.Last, AnalyzerSpend, score, fmt.Sprintf("%s in [%s, %s) so far, %s (limit %s)",
			dollars(s.Cents), clock(utc(w.Start)), clock(utc(w.End)), plural(s.Count, "transaction"), dollars(SpendLimitCents)))
	}, kstream.Named("spend-verdicts"))
	lateOnes := lateVerdicts(b, late, "late-spend", func(t Txn) []kstream.KeyValue[string, Finding] {
		score := 0
		if t.AmountCents > SpendLimitCents {
			score = ScoreHighSpend
		}
		return finding(t, AnalyzerSpend, score, fmt.Sprintf("late for its minute: %s alone (limit %s)",
			dollars(t.AmountCents), dollars(SpendLimitCents)))
	})
	return onTime.MergeNamed("spend-all", lateOnes)
}

// travelVerdicts judges each transaction by the leg from its card's
// previous transaction in event time: its distance and speed.
func travelVerdicts(byCard kstream.GroupedStream[string, Txn]) kstream.Stream[string, Finding] {
	tracks := kstream.Aggregate(byCard,
		func() TravelTrack { return TravelTrack{} },
		func(_ string, t Txn, tr TravelTrack) TravelTrack {
			p := Point{ID: t.ID, TS: t.TS, Merchant: t.Merchant, Lat: t.Lat, Lon: t.Lon}
			i, _ := slices.BinarySearchFunc(tr.Points, p, func(a, b Point) int { return a.TS.Compare(b.TS) })
			pts := slices.Insert(slices.Clone(tr.Points), i, p)
			from := pts[len(pts)-1].TS.Add(-TrackSpan)
			keep := slices.IndexFunc(pts, func(q Point) bool { return !q.TS.Before(from) })
			return TravelTrack{Points: pts[keep:], Last: t}
		},
		serde.JSON[TravelTrack](),
		kstream.Named("travel-track"), kstream.StoreName("travel-track"))
	return kstream.FlatMap(tracks.ToStream(kstream.Named("track-updates")), func(_ string, tr TravelTrack) []kstream.KeyValue[string, Finding] {
		t := tr.Last
		if t.ID == "" {
			return nil // a tombstone: tables from Aggregate have none
		}
		i := slices.IndexFunc(tr.Points, func(p Point) bool { return p.ID == t.ID })
		if i < 0 {
			// Older than the card's newest transaction by more than
			// TrackSpan: dropped from the track at once.
			return finding(t, AnalyzerTravel, 0, fmt.Sprintf("more than %v before the card's newest transaction", TrackSpan))
		}
		to := tr.Points[i]
		if i == 0 {
			return finding(t, AnalyzerTravel, 0, fmt.Sprintf("no transaction of the card in the %v before", TrackSpan))
		}
		from := tr.Points[i-1]
		km, kmh := legSpeed(from, to)
		score := 0
		if km >= MinTravelKm && kmh > MaxSpeedKmh {
			score = ScoreImpossible
		}
		return finding(t, AnalyzerTravel, score, fmt.Sprintf("%.0f km in %v (%.0f km/h) from %s at %s",
			km, to.TS.Sub(from.TS), kmh, from.Merchant, clock(from.TS)))
	}, kstream.Named("travel-verdicts"))
}

// merchantVerdicts judges each transaction by its merchant's risk category
// in the merchants table.
func merchantVerdicts(txns kstream.Stream[string, Txn], merchants kstream.Table[string, MerchantInfo]) kstream.Stream[string, Finding] {
	byMerchant := kstream.SelectKey(txns, func(_ string, t Txn) string { return t.Merchant }, kstream.Named("by-merchant"))
	judged := kstream.LeftJoinTable(byMerchant, merchants, func(_ string, t Txn, m *MerchantInfo) Finding {
		if m == nil {
			return Finding{Txn: t, Verdict: Verdict{Analyzer: AnalyzerMerchant, Score: ScoreUnknown, Reason: "not in the merchants table"}}
		}
		return Finding{Txn: t, Verdict: Verdict{Analyzer: AnalyzerMerchant, Score: RiskScores[m.Risk],
			Reason: fmt.Sprintf("%s risk (%s in %s)", m.Risk, m.Kind, m.City)}}
	}, kstream.StreamJoined[string, Txn, MerchantInfo]{Key: serde.String, Left: serde.JSON[Txn](), Right: serde.JSON[MerchantInfo]()},
		kstream.Named("merchant-risk"))
	return kstream.SelectKey(judged, func(_ string, f Finding) string { return f.Txn.ID }, kstream.Named("merchant-verdicts"))
}

// sessionVerdicts judges each transaction by the distinct merchants of its
// card's session so far, and gives a late one a verdict of 0.
func sessionVerdicts(b *kstream.Builder, byCard kstream.GroupedStream[string, Txn], late string) kstream.Stream[string, Finding] {
	sessions := kstream.SessionAggregate(kstream.WindowedBy(byCard, SessionWindows),
		func() SessionSoFar { return SessionSoFar{} },
		func(_ string, t Txn, s SessionSoFar) SessionSoFar {
			return SessionSoFar{Count: s.Count + 1, Merchants: addMerchants(s.Merchants, t.Merchant), Last: t}
		},
		func(_ string, a, b SessionSoFar) SessionSoFar {
			// The merged sessions' last transactions are judged already:
			// the record that merges them is added after, and is Last.
			return SessionSoFar{Count: a.Count + b.Count, Merchants: addMerchants(a.Merchants, b.Merchants...)}
		},
		serde.JSON[SessionSoFar](),
		kstream.LateRecordsTo(late),
		kstream.Named("session-so-far"), kstream.StoreName("session-so-far"))
	onTime := kstream.FlatMap(sessions.ToStream(kstream.Named("session-updates")), func(w kstream.Windowed[string], s SessionSoFar) []kstream.KeyValue[string, Finding] {
		if s.Last.ID == "" {
			return nil // the tombstone of a session merged into a new one
		}
		score := 0
		if len(s.Merchants) >= ManyMerchants {
			score = ScoreManyMerchants
		}
		return finding(s.Last, AnalyzerSession, score, fmt.Sprintf("%s in %s in [%s, %s] so far",
			plural(len(s.Merchants), "merchant"), plural(s.Count, "transaction"), clock(utc(w.Start)), clock(utc(w.End))))
	}, kstream.Named("session-verdicts"))
	lateOnes := lateVerdicts(b, late, "late-sessions", func(t Txn) []kstream.KeyValue[string, Finding] {
		return finding(t, AnalyzerSession, 0, "late for its session: not judged")
	})
	return onTime.MergeNamed("session-all", lateOnes)
}

// add adds f's verdict, unless its analyzer has reported already.
func (s scoring) add(f Finding) scoring {
	i, found := slices.BinarySearchFunc(s.Verdicts, f.Verdict, func(a, b Verdict) int {
		return cmp.Compare(slices.Index(Analyzers, a.Analyzer), slices.Index(Analyzers, b.Analyzer))
	})
	if found {
		return scoring{Txn: s.Txn, Verdicts: s.Verdicts}
	}
	return scoring{Txn: f.Txn, Verdicts: slices.Insert(slices.Clone(s.Verdicts), i, f.Verdict), Added: true}
}

// scored returns the scored transaction.
func (s scoring) scored() Scored {
	out := Scored{Txn: s.Txn, Verdicts: s.Verdicts}
	for _, v := range s.Verdicts {
		out.Score += v.Score
	}
	return out
}

// ScoredLines formats scored transactions, in ID order: a line per
// transaction with its score, then a line per verdict.
func ScoredLines(ss []Scored) []string {
	sorted := slices.Clone(ss)
	slices.SortFunc(sorted, func(a, b Scored) int { return strings.Compare(a.Txn.ID, b.Txn.ID) })
	var lines []string
	for _, s := range sorted {
		t := s.Txn
		lines = append(lines, fmt.Sprintf("%s %s %s %s at %s: score %d", t.ID, clock(t.TS), t.Card, dollars(t.AmountCents), t.Merchant, s.Score))
		for _, v := range s.Verdicts {
			lines = append(lines, fmt.Sprintf("  %-8s %3d  %s", v.Analyzer, v.Score, v.Reason))
		}
	}
	return lines
}

// plural returns "1 thing" or "n things".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}
