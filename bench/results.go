package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// resultSet is one benchmark's per-run summaries: what its markdown tables
// show, written beside them as <base>.json, and what its chart is drawn
// from (-chart-from re-renders the chart from the JSON alone).
type resultSet struct {
	Date      time.Time        `json:"date"` // when the report was written, UTC, to the minute
	Records   int              `json:"records"`
	Rounds    int              `json:"rounds"`
	Machine   string           `json:"machine"`
	Workloads []string         `json:"workloads"` // chart order
	Systems   []string         `json:"systems"`   // chart and legend order
	Runs      []summary        `json:"runs"`
	Latency   []latencySummary `json:"latency,omitempty"`
}

// latencySummary is a latencyResult in milliseconds, as in the latency
// table.
type latencySummary struct {
	Workload string  `json:"workload"`
	System   string  `json:"system"`
	EOS      bool    `json:"eos"`
	Rate     int     `json:"rate"` // input records/s
	P50      float64 `json:"p50_ms"`
	P99      float64 `json:"p99_ms"`
	Max      float64 `json:"max_ms"`
	Records  int     `json:"records"`
}

func latencySummaries(lats []latencyResult) []latencySummary {
	var out []latencySummary
	for _, l := range lats {
		out = append(out, latencySummary{Workload: l.workload, System: l.system, EOS: l.eos, Rate: l.rate,
			P50: ms(l.p50), P99: ms(l.p99), Max: ms(l.max), Records: l.records})
	}
	return out
}

func writeResultSet(path string, rs resultSet) error {
	b, err := json.MarshalIndent(rs, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func readResultSet(path string) (resultSet, error) {
	var rs resultSet
	b, err := os.ReadFile(path)
	if err != nil {
		return rs, err
	}
	if err := json.Unmarshal(b, &rs); err != nil {
		return rs, fmt.Errorf("%s: %w", path, err)
	}
	return rs, nil
}

var (
	mdDateRe    = regexp.MustCompile(`^# Side-by-side benchmark, (.+)$`)
	mdInputRe   = regexp.MustCompile(`^Input: (\d+) records\b`)
	mdRoundsRe  = regexp.MustCompile(`medians of (\d+) interleaved rounds`)
	mdWorkRe    = regexp.MustCompile(`^- (W\w+): `)
	mdLatRateRe = regexp.MustCompile(`^Latency: .* writes (\d+) records/s `)
)

// parseMarkdown reads a report's markdown (report) back into its result
// set: the heading's date, the machine, the input records and rounds, the
// workload list, and the throughput, restore and latency tables, columns
// found by their headers. Systems are in the order they first appear.
// Figures are as rounded in the tables; the ratio columns are not read.
func parseMarkdown(b []byte) (resultSet, error) {
	var rs resultSet
	var header []string // the current table's column names; nil outside a table
	var latRate int
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "|") {
			header = nil
		}
		switch m := mdDateRe.FindStringSubmatch(line); {
		case m != nil:
			t, err := time.Parse("2006-01-02 15:04 MST", m[1])
			if err != nil {
				return rs, fmt.Errorf("line %d: date: %w", n, err)
			}
			rs.Date = t.UTC()
		case strings.HasPrefix(line, "Machine: "):
			rs.Machine = strings.TrimSuffix(strings.TrimPrefix(line, "Machine: "), ".")
		case strings.HasPrefix(line, "Input: "):
			im, rm := mdInputRe.FindStringSubmatch(line), mdRoundsRe.FindStringSubmatch(line)
			if im == nil || rm == nil {
				return rs, fmt.Errorf("line %d: no records or rounds in the input line", n)
			}
			rs.Records, _ = strconv.Atoi(im[1])
			rs.Rounds, _ = strconv.Atoi(rm[1])
		case mdWorkRe.MatchString(line):
			rs.Workloads = append(rs.Workloads, mdWorkRe.FindStringSubmatch(line)[1])
		case mdLatRateRe.MatchString(line):
			latRate, _ = strconv.Atoi(mdLatRateRe.FindStringSubmatch(line)[1])
		case strings.HasPrefix(line, "|"):
			cells := mdCells(line)
			if header == nil {
				header = cells
				continue
			}
			if strings.HasPrefix(cells[0], "---") {
				continue
			}
			if err := rs.addRow(header, cells, latRate); err != nil {
				return rs, fmt.Errorf("line %d: %w", n, err)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return rs, err
	}
	switch {
	case rs.Date.IsZero():
		return rs, fmt.Errorf("no %q heading", "# Side-by-side benchmark, <date>")
	case rs.Records == 0:
		return rs, fmt.Errorf("no input records")
	case len(rs.Runs) == 0:
		return rs, fmt.Errorf("no throughput table")
	}
	return rs, nil
}

func mdCells(line string) []string {
	cells := strings.Split(strings.Trim(line, "|"), "|")
	for i := range cells {
		cells[i] = strings.TrimSpace(cells[i])
	}
	return cells
}

// addRow adds one row of a table whose columns are header: the throughput
// table (a "steady rec/s" column), the restore table ("restore rec/s",
// merged into the run of the same workload, guarantee and system) or the
// latency table ("p99 ms"). Rows of other tables are ignored.
func (rs *resultSet) addRow(header, cells []string, latRate int) error {
	col := func(name string) (string, error) {
		i := slices.Index(header, name)
		if i < 0 || i >= len(cells) {
			return "", fmt.Errorf("no %q cell", name)
		}
		return cells[i], nil
	}
	var kind string
	for _, k := range []string{"steady rec/s", "restore rec/s", "p99 ms"} {
		if slices.Contains(header, k) {
			kind = k
		}
	}
	if kind == "" {
		return nil
	}
	var err error
	num := func(name string) float64 {
		c, cerr := col(name)
		if cerr != nil {
			err = firstErr(err, cerr)
			return 0
		}
		v, perr := strconv.ParseFloat(c, 64)
		if perr != nil {
			err = firstErr(err, fmt.Errorf("%s: %w", name, perr))
		}
		return v
	}
	w, werr := col("workload")
	g, gerr := col("guarantee")
	sys, serr := col("system")
	if err := firstErr(firstErr(werr, gerr), serr); err != nil {
		return err
	}
	if g != guaranteeName(true) && g != guaranteeName(false) {
		return fmt.Errorf("guarantee %q", g)
	}
	eos := g == guaranteeName(true)
	switch kind {
	case "steady rec/s":
		rs.Runs = append(rs.Runs, summary{Workload: w, System: sys, EOS: eos, Runs: rs.Rounds,
			Rate: num("rec/s"), Steady: num("steady rec/s"), CPUPerM: num("CPU-s per M rec"), RSSMiB: num("peak RSS MiB"),
			First: num("first output s"), Outputs: num("outputs"), Changelog: num("changelog")})
	case "restore rec/s":
		i := slices.IndexFunc(rs.Runs, func(s summary) bool { return s.Workload == w && s.System == sys && s.EOS == eos })
		if i < 0 {
			return fmt.Errorf("restore of %s %s %s: no such run in the throughput table", w, g, sys)
		}
		rs.Runs[i].Restored, rs.Runs[i].RestoreRate = num("restored"), num("restore rec/s")
	case "p99 ms":
		rs.Latency = append(rs.Latency, latencySummary{Workload: w, System: sys, EOS: eos, Rate: latRate,
			P50: num("p50 ms"), P99: num("p99 ms"), Max: num("max ms"), Records: int(num("records"))})
	}
	if !slices.Contains(rs.Systems, sys) {
		rs.Systems = append(rs.Systems, sys)
	}
	return err
}

// firstErr returns the first non-nil error.
func firstErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
