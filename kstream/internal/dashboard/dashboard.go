package dashboard

import (
	"context"
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
)

//go:embed assets
var assets embed.FS

// HistoryLen is how many samples api/history keeps: five minutes at the
// default interval of a second.
const HistoryLen = 300

// Source is what a Handler shows.
type Source struct {
	// Topology is the topology's description, served as JSON as it is.
	Topology any
	// Metrics returns a snapshot of the App's metrics; it must be safe to
	// call from any goroutine.
	Metrics func() engine.Metrics
	// Running is closed when the App starts running, Done when it stopped:
	// the history goroutine runs in between. A nil Running counts as
	// closed; a nil Done never closes (then only Close stops the
	// goroutine).
	Running, Done <-chan struct{}
	// Interval is the time between history samples; 0 means a second.
	Interval time.Duration
	// Group, when set, describes the App's whole group (every instance,
	// its workers and their tasks) for api/group. It is called from a
	// request's goroutine, at most once per GroupTTL; its error is shown
	// on the page.
	Group func(ctx context.Context) (any, error)
	// GroupTTL is how long a Group result is served before the next call;
	// 0 means DefaultGroupTTL.
	GroupTTL time.Duration
}

// DefaultGroupTTL is how long api/group serves a description of the group
// before it asks again.
const DefaultGroupTTL = 3 * time.Second

// groupTimeout bounds one Group call.
const groupTimeout = 10 * time.Second

// GroupView is what api/group serves: the group's description as Group
// returned it, or the error it returned.
type GroupView struct {
	// Time is when Group was called.
	Time time.Time
	// Group is Group's description; nil when it failed.
	Group any `json:",omitempty"`
	// Error is Group's error; "" when it succeeded.
	Error string `json:",omitempty"`
}

// Handler serves the dashboard. It is safe for concurrent use.
type Handler struct {
	src    Source
	static http.Handler
	topo   []byte // the topology's JSON, encoded once
	topErr error

	once sync.Once     // starts the history goroutine
	quit chan struct{} // closed by Close
	stop sync.Once     // closes quit
	wg   sync.WaitGroup

	mu      sync.Mutex // guards history; a leaf lock
	history ring

	// groupMu guards group. It is held while Group runs (network I/O), so
	// concurrent requests wait for one call; nothing else is locked under
	// it.
	groupMu sync.Mutex
	group   GroupView
}

// New returns a Handler for src.
func New(src Source) *Handler {
	if src.Interval <= 0 {
		src.Interval = time.Second
	}
	if src.GroupTTL <= 0 {
		src.GroupTTL = DefaultGroupTTL
	}
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree always has assets/
	}
	h := &Handler{src: src, static: http.FileServerFS(sub), quit: make(chan struct{})}
	h.topo, h.topErr = json.Marshal(src.Topology)
	return h
}

// ServeHTTP serves the page, its assets and the JSON endpoints. An empty
// path (the handler mounted at /dash and the request for /dash) redirects
// to the same path with a trailing slash, so the page's relative links
// resolve under the mount point.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.startHistory()
	p := strings.TrimPrefix(r.URL.Path, "/")
	if r.URL.Path == "" {
		base := path.Base(strings.SplitN(r.RequestURI, "?", 2)[0])
		if base == "/" || base == "." {
			base = ""
		}
		// Relative, so the browser keeps the prefix (http.Redirect would
		// resolve it against the stripped path).
		w.Header().Set("Location", base+"/")
		w.WriteHeader(http.StatusMovedPermanently)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch p {
	case "api/topology":
		if h.topErr != nil {
			http.Error(w, "dashboard: encode topology: "+h.topErr.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(w, json.RawMessage(h.topo))
	case "api/metrics":
		m := h.src.Metrics()
		if m.Time.IsZero() {
			m.Time = time.Now()
		}
		writeJSON(w, m)
	case "api/history":
		h.mu.Lock()
		samples := h.history.all()
		h.mu.Unlock()
		writeJSON(w, History{IntervalMillis: h.src.Interval.Milliseconds(), Samples: samples})
	case "api/group":
		if h.src.Group == nil {
			http.NotFound(w, r)
			return
		}
		writeJSON(w, h.groupView(r.Context()))
	default:
		if strings.HasPrefix(p, "api/") {
			http.NotFound(w, r)
			return
		}
		r2 := new(http.Request)
		*r2 = *r
		u := *r.URL
		u.Path = "/" + p
		r2.URL = &u
		w.Header().Set("Cache-Control", "no-cache")
		h.static.ServeHTTP(w, r2)
	}
}

// groupView returns the cached description of the group, asking Group
// again when it is older than GroupTTL. The call outlives a request that
// goes away (other requests may wait for it), within groupTimeout.
func (h *Handler) groupView(ctx context.Context) GroupView {
	h.groupMu.Lock()
	defer h.groupMu.Unlock()
	now := time.Now()
	if !h.group.Time.IsZero() && now.Sub(h.group.Time) < h.src.GroupTTL {
		return h.group
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), groupTimeout)
	defer cancel()
	g, err := h.src.Group(ctx)
	h.group = GroupView{Time: now, Group: g}
	if err != nil {
		h.group = GroupView{Time: now, Error: err.Error()}
	}
	return h.group
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "dashboard: encode: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b)
}

// Close stops the history goroutine, if it runs, and waits for it. It is
// idempotent; the handler keeps serving, with the history it has.
func (h *Handler) Close() {
	h.stop.Do(func() { close(h.quit) })
	h.wg.Wait()
}

// Wait waits for the history goroutine to end (after Done closed, or
// Close). It returns at once when the goroutine never started.
func (h *Handler) Wait() { h.wg.Wait() }

// startHistory starts the history goroutine once, on the first request
// made while the App runs.
func (h *Handler) startHistory() {
	if !closed(h.src.Running, true) || closed(h.src.Done, false) || closed(h.quit, false) {
		return
	}
	h.once.Do(func() {
		h.wg.Add(1)
		go h.sample()
	})
}

// closed reports whether c is closed; a nil c is nilClosed.
func closed(c <-chan struct{}, nilClosed bool) bool {
	if c == nil {
		return nilClosed
	}
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// sample records a sample now and then every interval, until Done or
// Close.
func (h *Handler) sample() {
	defer h.wg.Done()
	tick := time.NewTicker(h.src.Interval)
	defer tick.Stop()
	for {
		s := SampleOf(h.src.Metrics(), time.Now())
		h.mu.Lock()
		h.history.add(s)
		h.mu.Unlock()
		select {
		case <-h.src.Done:
			return
		case <-h.quit:
			return
		case <-tick.C:
		}
	}
}
