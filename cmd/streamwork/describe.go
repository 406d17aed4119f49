package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"

	"github.com/streamwork-go/streamwork/kstream"
)

func runDescribe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("describe", "(-f topology.json | -url http://host:port/prefix/) [-format text|mermaid]", stderr)
	file := fs.String("f", "", "a JSON file of a kstream.TopologyDescription (Go field names)")
	base := fs.String("url", "", "the base URL of a running App's dashboard; its api/topology is read")
	format := fs.String("format", "text", "output format: text or mermaid")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if (*file == "") == (*base == "") {
		return usageError(fs, "give exactly one of -f and -url")
	}
	if *format != "text" && *format != "mermaid" {
		return usageError(fs, "-format %q: want text or mermaid", *format)
	}
	var d kstream.TopologyDescription
	var err error
	if *file != "" {
		d, err = readTopologyFile(*file)
	} else {
		d, err = fetchTopology(ctx, *base)
	}
	if err != nil {
		return fail(stderr, "describe", err)
	}
	if *format == "mermaid" {
		fmt.Fprint(stdout, d.Mermaid())
	} else {
		fmt.Fprint(stdout, d.String())
	}
	return exitOK
}

// readTopologyFile decodes the topology description in file.
func readTopologyFile(file string) (kstream.TopologyDescription, error) {
	var d kstream.TopologyDescription
	b, err := os.ReadFile(file)
	if err != nil {
		return d, err
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return d, fmt.Errorf("%s: %w", file, err)
	}
	return d, nil
}

// fetchTopology reads the topology description a running App's dashboard
// serves at <base>/api/topology.
func fetchTopology(ctx context.Context, base string) (kstream.TopologyDescription, error) {
	var d kstream.TopologyDescription
	u, err := url.Parse(base)
	if err != nil {
		return d, fmt.Errorf("-url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return d, fmt.Errorf("-url %q: want an http or https URL", base)
	}
	if u.Path == "" || u.Path[len(u.Path)-1] != '/' {
		u.Path += "/"
	}
	u = u.JoinPath("api", "topology")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return d, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return d, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return d, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		return d, fmt.Errorf("GET %s: %w", u, err)
	}
	return d, nil
}
