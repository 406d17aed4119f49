package kprom_test

import (
	"bufio"
	"fmt"
	"log"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/kstream/kprom"
	"github.com/streamwork-go/streamwork/kstream/kstreamtest"
	"github.com/streamwork-go/streamwork/serde"
)

// Register a Collector and serve /metrics on loopback. A real service
// passes its *kstream.App; here a test driver stands in for it.
func ExampleNewCollector() {
	b := kstream.NewBuilder()
	kstream.From(b, "in", serde.String, serde.String, kstream.Named("source")).
		To("out", serde.String, serde.String, kstream.Named("sink"))
	topo, err := b.Build()
	if err != nil {
		log.Fatal(err)
	}
	app, err := kstreamtest.New(topo, kstream.ApplicationID("example"))
	if err != nil {
		log.Fatal(err)
	}
	defer app.Close()
	in := kstreamtest.Input(app, "in", serde.String, serde.String)
	for _, k := range []string{"a", "b", "c"} {
		if err := in.Pipe(k, "v", app.Now()); err != nil {
			log.Fatal(err)
		}
	}

	c, err := kprom.NewCollector(app, kprom.ApplicationID("example"))
	if err != nil {
		log.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	resp, err := http.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "streamwork_node_records_") && strings.Contains(line, "_total{") {
			fmt.Println(line)
		}
	}
	// Output:
	// streamwork_node_records_in_total{application_id="example",node="sink",subtopology="0"} 3
	// streamwork_node_records_in_total{application_id="example",node="source",subtopology="0"} 3
	// streamwork_node_records_out_total{application_id="example",node="sink",subtopology="0"} 3
	// streamwork_node_records_out_total{application_id="example",node="source",subtopology="0"} 3
}
