package docs

// The README's Go code. Each region between "// snippet:begin X" and
// "// snippet:end X" is shown in README.md under a marker
// "<!-- snippet: examples/docs/readme_test.go#X -->", and TestSnippetsMatchTheirSource
// keeps the two equal; the module's build and vet compile it here.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/kstream/kstreamtest"
	"github.com/streamwork-go/streamwork/serde"
)

// PageView is a page view, as in examples/pageviews.
type PageView struct {
	User   string `json:"user"`
	Page   string `json:"page"`
	Device string `json:"device"`
	Bot    bool   `json:"bot"`
}

func isMobile(_ string, v PageView) bool { return v.Device == "phone" || v.Device == "tablet" }

func summary(v PageView) string {
	if isMobile(v.User, v) {
		return fmt.Sprintf("%s viewed %s on mobile (%s)", v.User, v.Page, v.Device)
	}
	return fmt.Sprintf("%s viewed %s on desktop", v.User, v.Page)
}

func pageviewsTopology() (*kstream.Topology, error) {
	// snippet:begin topology
	b := kstream.NewBuilder()
	views := kstream.From(b, "pageviews", serde.String, serde.JSON[PageView]())
	humans := views.FilterNot(func(_ string, v PageView) bool { return v.Bot })
	byDevice := humans.Split("device-",
		kstream.Branch[string, PageView]{Name: "mobile", Pred: isMobile},
		kstream.DefaultBranch[string, PageView]("desktop"))
	kstream.MapValues(byDevice["mobile"], summary).
		Merge(kstream.MapValues(byDevice["desktop"], summary)).
		To("summaries", serde.String, serde.String)
	topo, err := b.Build()
	// snippet:end topology
	return topo, err
}

func runPageviews(ctx context.Context) error {
	topo, err := pageviewsTopology()
	if err != nil {
		return err
	}
	// snippet:begin app
	app, err := kstream.New(topo,
		kstream.ApplicationID("pageviews"),
		kstream.Brokers("localhost:9092"),
		kstream.Workers(2),
		kstream.DeserializationErrorHandler(kstream.LogAndDeadLetter("pageviews-dlq")))
	err = app.Run(ctx) // until ctx is cancelled: then commit, leave the group, return
	// snippet:end app
	return err
}

func wordCount(b *kstream.Builder) {
	// snippet:begin wordcount
	lines := kstream.From(b, "lines", serde.String, serde.String)
	words := kstream.FlatMapValues(lines, strings.Fields)
	counts := kstream.Count(
		kstream.GroupBy(words, func(_, w string) string { return w }, serde.String, serde.String),
		kstream.StoreName("word-counts"))
	counts.ToStream().To("word-counts", serde.String, serde.Int64)
	// snippet:end wordcount
}

func clicksPerMinute(b *kstream.Builder) {
	// snippet:begin windows
	clicks := kstream.From(b, "clicks", serde.String, serde.String)
	perMinute := kstream.WindowedCount(
		kstream.WindowedBy(kstream.GroupByKey(clicks, serde.String, serde.String),
			kstream.Tumbling(time.Minute, 10*time.Second)), // size, grace
		kstream.EmitFinal(), kstream.LateRecordsTo("late-clicks"))
	perMinute.ToStream().To("clicks-per-minute", kstream.TimeWindowedSerde(serde.String, time.Minute), serde.Int64)
	// snippet:end windows
}

// Click, View and Enriched are the join's values.
type (
	Click    struct{ Page string }
	View     struct{ Page string }
	Enriched struct {
		Click Click
		View  *View
	}
)

var (
	clickSerde = serde.JSON[Click]()
	viewSerde  = serde.JSON[View]()
)

func enrich(c Click, v *View) Enriched { return Enriched{Click: c, View: v} }

func join(clicks kstream.Stream[string, Click], views kstream.Stream[string, View]) kstream.Stream[string, Enriched] {
	// snippet:begin join
	ws := kstream.JoinTimeDifference(time.Minute, 10*time.Second) // records at most a minute apart, 10s grace
	enriched := kstream.LeftJoin(clicks, views,
		func(user string, c Click, v *View) Enriched { return enrich(c, v) }, // v is nil when no view matched
		ws, kstream.StreamJoined[string, Click, View]{Key: serde.String, Left: clickSerde, Right: viewSerde})
	// snippet:end join
	return enriched
}

func secure(topo *kstream.Topology, roots *x509.CertPool, pw string) (*kstream.App, error) {
	// snippet:begin security
	app, err := kstream.New(topo,
		kstream.ApplicationID("orders-copier"),
		kstream.Brokers("kafka-1.example.com:9093"),
		kstream.TLS(&tls.Config{RootCAs: roots}), // nil RootCAs: the system's roots
		kstream.SASL(scram.Auth{User: "orders-copier", Pass: pw}.AsSha512Mechanism()),
	)
	// snippet:end security
	return app, err
}

func shed(b *kstream.Builder) {
	// snippet:begin shed
	kstream.From(b, "clicks", serde.String, serde.JSON[Click](),
		kstream.ShedLoad(kstream.ShedPolicy{MaxLag: 100_000, MaxBuffered: 500, To: "clicks-shed"}))
	// snippet:end shed
}

func queries(app *kstream.App, mux *http.ServeMux) error {
	// snippet:begin query-handler
	h, err := app.QueryHandler(kstream.Queryable("counts", serde.String, serde.Int64))
	mux.Handle("/query/", http.StripPrefix("/query", h))
	// snippet:end query-handler
	return err
}

func dashboard(app *kstream.App) {
	// snippet:begin dashboard
	mux := http.NewServeMux()
	mux.Handle("/dashboard/", http.StripPrefix("/dashboard", app.Dashboard()))
	go http.ListenAndServe("127.0.0.1:8080", mux) // then open http://127.0.0.1:8080/dashboard/
	// snippet:end dashboard
}

// The README's test-driver snippet, run: its output is checked.
func Example_testDriver() {
	topo, err := pageviewsTopology()
	if err != nil {
		panic(err)
	}
	// snippet:begin driver
	d, _ := kstreamtest.New(topo)
	in := kstreamtest.Input(d, "pageviews", serde.String, serde.JSON[PageView]())
	out := kstreamtest.Output(d, "summaries", serde.String, serde.String)
	in.Pipe("alice", PageView{User: "alice", Page: "/home", Device: "phone"}, time.UnixMilli(1000))
	fmt.Println(out.KeyValues())    // [{alice alice viewed /home on mobile (phone)}]
	d.AdvanceWallClock(time.Minute) // fires wall-clock punctuators
	// snippet:end driver

	// Output: [{alice alice viewed /home on mobile (phone)}]
}
