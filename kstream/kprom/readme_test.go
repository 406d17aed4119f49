package kprom_test

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/kstream/kprom"
)

// serveMetrics is the README's registration of a Collector, compiled here;
// examples/docs checks that the README shows exactly the region below.
func serveMetrics(app *kstream.App) error {
	// snippet:begin readme
	c, err := kprom.NewCollector(app) // application_id from the App
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	// snippet:end readme
	return nil
}

var _ = serveMetrics
