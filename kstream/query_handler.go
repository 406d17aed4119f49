package kstream

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/streamwork-go/streamwork/kstream/internal/runtime"
	"github.com/streamwork-go/streamwork/kstream/internal/wire"
	"github.com/streamwork-go/streamwork/serde"
	"github.com/streamwork-go/streamwork/state"
)

// ForwardedHeader marks a query request one instance's QueryHandler
// forwarded to another: the receiver answers from its own tasks only and
// never forwards it again.
const ForwardedHeader = "Streamwork-Forwarded"

// forwardTimeout bounds a forwarded query.
const forwardTimeout = 10 * time.Second

// QueryableStore is a store the QueryHandler answers for, with its serdes.
// Queryable makes one.
type QueryableStore interface {
	queryable() *queryable
}

// queryable is a store's serdes with the types erased: keys from their
// URL text to bytes, and keys and values from bytes to what encoding/json
// writes.
type queryable struct {
	name     string
	parseKey func(string) ([]byte, any, error)
	keyOut   func([]byte) (any, error)
	valOut   func([]byte) (any, error)
}

func (q *queryable) queryable() *queryable { return q }

// Queryable registers store with its key and value serdes (those of the
// operator that writes it) for the QueryHandler. Keys arrive in URLs as
// text: the text itself when K is string, else K's JSON (a number as
// "42"). Keys and values are answered as their JSON (encoding/json).
func Queryable[K, V any](store string, ks serde.Serde[K], vs serde.Serde[V]) QueryableStore {
	return &queryable{
		name: store,
		parseKey: func(s string) ([]byte, any, error) {
			var k K
			if ps, ok := any(&k).(*string); ok {
				*ps = s
			} else if err := json.Unmarshal([]byte(s), &k); err != nil {
				return nil, nil, fmt.Errorf("key %q is not the JSON of a %T: %w", s, k, err)
			}
			if ks == nil {
				return nil, nil, fmt.Errorf("store %q has no key serde", store)
			}
			kb, err := ks.Serialize(store, k)
			if err != nil {
				return nil, nil, fmt.Errorf("encode key %q: %w", s, err)
			}
			if kb == nil {
				kb = []byte{}
			}
			return kb, k, nil
		},
		keyOut: func(b []byte) (any, error) { return ks.Deserialize(store, b) },
		valOut: func(b []byte) (any, error) { return vs.Deserialize(store, b) },
	}
}

// storeKind is what a QueryHandler can ask of a store.
type storeKind int

const (
	kindKeyValue storeKind = iota
	kindGlobal
	kindWindow // time windows and sessions
	kindVersioned
)

type handledStore struct {
	*queryable
	kind    storeKind
	stamped bool // key-value values start with their 8-byte timestamp
}

// QueryHandler returns an http.Handler that answers interactive queries on
// the stores given, from any instance of the application: the service
// mounts it where it wants (every instance at the same path, served at its
// QueryAddr), e.g. mux.Handle("/query/", http.StripPrefix("/query", h)).
// Requests (GET; keys and range bounds as the text Queryable describes):
//
//	/stores/{store}/keys/{key}               a key-value or global store's value;
//	                                         a versioned table's latest (?asOf=ms: as of a time)
//	/stores/{store}/keys/{key}/windows       a windowed store's windows of key starting
//	                                         in [?from=ms, ?to=ms] (default: all)
//	/stores/{store}/all                      every entry of a key-value store
//	/stores/{store}/range?from=k1&to=k2      its entries with keys in [k1, k2) (the
//	                                         serialized keys' order)
//
// A key is answered by the instance whose task holds it: this one when it
// does, else the request is forwarded once (ForwardedHeader) to the
// QueryAddr of the task's active instance, whose answer is returned. A
// scan asks every instance holding tasks of the store and merges their
// entries, partition by partition (ascending), each partition in key
// order; it answers only when every partition was read.
//
// Stale reads: with ?stale=true, a key of a key-value store may be read
// from a standby replica (StandbyReplicas). The instance asked answers
// from its own active task if it runs one; else from its own standby of
// the key's task if it keeps one (even when the active instance could
// answer: the caller accepted stale data, and no request is forwarded);
// else it forwards to the active instance, then, when that one cannot
// answer (stopped, unreachable, or no longer holding the task), to each
// instance keeping a standby. An answer read from a standby has
// "stale": true and "lag": the number of changelog records the standby
// was behind the end of its changelogs at the time of the read, as of
// its latest fetch (0: caught up with what it last fetched). Windowed and
// versioned stores, and scans, are answered from active tasks only.
//
// Every answer that is not an error and not stale was read from the task
// that owns the key at that moment: an instance reads only tasks it runs
// (started and restored), holding the task's registration across the
// read, and a scan keeps a partition only if its task was still there
// after the scan. A stale answer was read from a standby that was
// registered across the read: never from a store closing, or reopened as
// an active task, meanwhile.
// While the group rebalances, when the owner is unknown or unreachable, or
// when the instance asked no longer holds the task, the answer is 503 with
// Retry-After and {"error": "...", "retryable": true}: retry. Unknown
// stores and paths are 404, bad parameters 400.
//
// It returns an error wrapping ErrUnknownStore for a store the topology
// does not have. The handler is safe for concurrent use; it needs the App
// running to answer (before that, 503).
func (a *App) QueryHandler(stores ...QueryableStore) (http.Handler, error) {
	if a == nil {
		return nil, fmt.Errorf("%w: QueryHandler needs an App", ErrConfig)
	}
	h := &queryHandler{
		a:      a,
		self:   a.rt.Config().QueryAddr,
		stores: make(map[string]*handledStore),
		client: &http.Client{Timeout: forwardTimeout},
	}
	for _, s := range stores {
		if s == nil {
			continue
		}
		q := s.queryable()
		hs := &handledStore{queryable: q}
		spec := a.topo.t.Stores[q.name]
		switch {
		case a.isGlobalStore(q.name):
			hs.kind = kindGlobal
			hs.stamped = spec != nil && spec.Timestamped
		case spec == nil || a.topo.t.StoreSub[q.name] == nil:
			return nil, fmt.Errorf("%w: %q", ErrUnknownStore, q.name)
		case spec.Versioned:
			hs.kind = kindVersioned
		case spec.Retention > 0:
			hs.kind = kindWindow
		default:
			hs.kind, hs.stamped = kindKeyValue, spec.Timestamped
		}
		h.stores[q.name] = hs
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stores/{store}/keys/{key}", h.serveGet)
	mux.HandleFunc("GET /stores/{store}/keys/{key}/windows", h.serveWindows)
	mux.HandleFunc("GET /stores/{store}/all", func(w http.ResponseWriter, r *http.Request) { h.serveScan(w, r, false) })
	mux.HandleFunc("GET /stores/{store}/range", func(w http.ResponseWriter, r *http.Request) { h.serveScan(w, r, true) })
	h.mux = mux
	return h, nil
}

type queryHandler struct {
	a      *App
	self   string
	stores map[string]*handledStore
	client *http.Client
	mux    *http.ServeMux
}

func (h *queryHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// keyAnswer is the JSON of a key's answer.
type keyAnswer struct {
	Store     string `json:"store"`
	Key       any    `json:"key"`
	Partition int32  `json:"partition"`
	Host      string `json:"host"`
	Stale     bool   `json:"stale"`
	// Lag is, for a stale answer, how many changelog records the standby
	// it was read from was behind at the time of the read.
	Lag   *int64 `json:"lag,omitempty"`
	Found bool   `json:"found"`
	Value any    `json:"value,omitempty"`
	// Timestamp is a versioned value's validity start (ms).
	Timestamp *int64         `json:"timestamp,omitempty"`
	Windows   []windowAnswer `json:"windows,omitempty"`
}

type windowAnswer struct {
	Start int64 `json:"start"`
	End   int64 `json:"end"`
	Value any   `json:"value"`
}

type scanAnswer struct {
	Store      string      `json:"store"`
	Partitions []int32     `json:"partitions"`
	Entries    []scanEntry `json:"entries"`
}

type scanEntry struct {
	Key       json.RawMessage `json:"key"`
	Value     json.RawMessage `json:"value"`
	Partition int32           `json:"partition"`
}

type errorAnswer struct {
	Error     string `json:"error"`
	Retryable bool   `json:"retryable"`
}

// errNotHere: this instance does not run the task it was asked about.
var errNotHere = fmt.Errorf("%w: this instance does not hold the task", ErrStoreNotAvailable)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeErr answers err: 503 for what a retry may cure, else status.
func writeErr(w http.ResponseWriter, status int, err error) {
	retry := errors.Is(err, ErrRebalancing) || errors.Is(err, ErrStoreNotAvailable)
	if retry {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, errorAnswer{Error: err.Error(), Retryable: retry})
}

func (h *queryHandler) store(w http.ResponseWriter, r *http.Request, kinds ...storeKind) *handledStore {
	name := r.PathValue("store")
	s := h.stores[name]
	if s == nil {
		writeErr(w, http.StatusNotFound, fmt.Errorf("%w: %q is not queryable here", ErrUnknownStore, name))
		return nil
	}
	if !slices.Contains(kinds, s.kind) {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("store %q does not answer this query", name))
		return nil
	}
	return s
}

func (h *queryHandler) serveGet(w http.ResponseWriter, r *http.Request) {
	s := h.store(w, r, kindKeyValue, kindGlobal, kindVersioned)
	if s == nil {
		return
	}
	asOf := int64(-1)
	if v := r.URL.Query().Get("asOf"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || s.kind != kindVersioned {
			writeErr(w, http.StatusBadRequest, fmt.Errorf("asOf %q: a time in ms, for versioned tables only", v))
			return
		}
		asOf = n
	}
	h.serveKey(w, r, s, func(ans *keyAnswer, kb []byte, p int32) (bool, error) {
		q := h.a.rt.Queries()
		switch s.kind {
		case kindGlobal:
			vb, err := q.Get(s.name, true, kb)
			return true, h.setValue(ans, s, vb, err)
		case kindKeyValue:
			vb, owned, err := q.GetOwned(s.name, p, kb)
			if !owned {
				return false, nil
			}
			return true, h.setValue(ans, s, vb, err)
		}
		return q.ViewOwned(s.name, p, func(view any) error {
			st, ok := view.(state.VersionedStore)
			if !ok {
				return errNotHere
			}
			var (
				vb   []byte
				from int64
				ok2  bool
				err  error
			)
			if asOf >= 0 {
				vb, from, _, ok2, err = st.GetAsOf(kb, asOf)
			} else {
				vb, from, ok2, err = st.Get(kb)
			}
			if err != nil || !ok2 || vb == nil {
				return err
			}
			ans.Timestamp = &from
			return h.setValue(ans, s, vb, nil)
		})
	})
}

// setValue decodes a key-value read into ans.
func (h *queryHandler) setValue(ans *keyAnswer, s *handledStore, vb []byte, err error) error {
	if err != nil || vb == nil {
		return err
	}
	if s.stamped {
		if len(vb) < 8 {
			return fmt.Errorf("store %q: timestamped value of %d bytes", s.name, len(vb))
		}
		vb = vb[8:]
	}
	v, err := s.valOut(vb)
	if err != nil {
		return fmt.Errorf("store %q: decode value: %w", s.name, err)
	}
	ans.Found, ans.Value = true, v
	return nil
}

func (h *queryHandler) serveWindows(w http.ResponseWriter, r *http.Request) {
	s := h.store(w, r, kindWindow)
	if s == nil {
		return
	}
	from, err1 := msParam(r, "from", 0)
	to, err2 := msParam(r, "to", math.MaxInt64)
	if err := errors.Join(err1, err2); err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	h.serveKey(w, r, s, func(ans *keyAnswer, kb []byte, p int32) (bool, error) {
		return h.a.rt.Queries().ViewOwned(s.name, p, func(view any) error {
			var it state.WindowIterator
			switch st := view.(type) {
			case state.WindowStore:
				it = st.FetchRange(kb, from, to)
			case state.SessionStore:
				it = st.FindSessions(kb, from, to)
			default:
				return errNotHere
			}
			defer it.Close()
			ans.Windows = []windowAnswer{}
			for it.Next() {
				if it.Start() < from || it.Start() > to {
					continue
				}
				_, _, ab, err := wire.DecodeStamped(it.Value())
				if err != nil {
					return fmt.Errorf("store %q: %w", s.name, err)
				}
				v, err := s.valOut(ab)
				if err != nil {
					return fmt.Errorf("store %q: decode value: %w", s.name, err)
				}
				ans.Windows = append(ans.Windows, windowAnswer{Start: it.Start(), End: it.End(), Value: v})
			}
			ans.Found = len(ans.Windows) > 0
			return it.Err()
		})
	})
}

func msParam(r *http.Request, name string, def int64) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s %q: want a time in ms", name, v)
	}
	return n, nil
}

// serveKey answers a query of one key: read reads it here if this
// instance holds partition p of the store (owned), else the request goes
// to the key's active instance, then (stale reads) its standbys.
func (h *queryHandler) serveKey(w http.ResponseWriter, r *http.Request, s *handledStore, read func(ans *keyAnswer, kb []byte, p int32) (owned bool, err error)) {
	kb, key, err := s.parseKey(r.PathValue("key"))
	if err != nil {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("store %q: %w", s.name, err))
		return
	}
	ans := &keyAnswer{Store: s.name, Key: key, Partition: -1, Host: h.self}
	if s.kind != kindGlobal {
		n := h.a.rt.Queries().StorePartitions(s.name)
		if n <= 0 {
			writeErr(w, 0, fmt.Errorf("%w: the App has not started", ErrRebalancing))
			return
		}
		ans.Partition = runtime.PartitionOf(kb, n)
	}
	owned, err := read(ans, kb, ans.Partition)
	switch {
	case errors.Is(err, errNotHere):
	case err != nil:
		writeErr(w, http.StatusInternalServerError, err)
		return
	case owned:
		writeJSON(w, http.StatusOK, ans)
		return
	}
	stale := r.URL.Query().Get("stale") == "true"
	if stale && s.kind == kindKeyValue {
		vb, lag, held, err := h.a.rt.Queries().GetStandby(s.name, ans.Partition, kb)
		if held {
			if err = h.setValue(ans, s, vb, err); err != nil {
				writeErr(w, http.StatusInternalServerError, err)
				return
			}
			ans.Stale, ans.Lag = true, &lag
			writeJSON(w, http.StatusOK, ans)
			return
		}
	}
	if r.Header.Get(ForwardedHeader) != "" {
		writeErr(w, 0, fmt.Errorf("store %q partition %d at %s: %w", s.name, ans.Partition, h.self, errNotHere))
		return
	}
	md, err := h.a.keyHosts(s.name, kb)
	if err == nil && md.Active == "" && (!stale || len(md.Standby) == 0) {
		err = fmt.Errorf("%w: store %q partition %d has no active host now", ErrRebalancing, s.name, ans.Partition)
	}
	if err != nil {
		writeErr(w, http.StatusInternalServerError, err)
		return
	}
	cands := []string{md.Active}
	if stale {
		cands = append(cands, md.Standby...)
	}
	lastErr := fmt.Errorf("store %q partition %d: %w", s.name, ans.Partition, errNotHere)
	for _, addr := range cands {
		if addr == h.self || addr == "" {
			continue // read above: not here now
		}
		status, body, err := h.forward(r, addr)
		if err != nil {
			lastErr = err
			continue
		}
		if status == http.StatusServiceUnavailable {
			lastErr = fmt.Errorf("%w: %s answered 503", ErrStoreNotAvailable, addr)
			continue
		}
		// The answer says itself whether it was read from a standby.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
		return
	}
	writeErr(w, 0, lastErr)
}

// forward sends r to the handler at addr, marked forwarded, and returns
// its status and body; an error (wrapping ErrStoreNotAvailable) when addr
// cannot be reached.
func (h *queryHandler) forward(r *http.Request, addr string) (int, []byte, error) {
	uri := r.RequestURI // as received: the service's mount path included
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, "http://"+addr+uri, nil)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: forward to %s: %v", ErrStoreNotAvailable, addr, err)
	}
	req.Header.Set(ForwardedHeader, h.self)
	resp, err := h.client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: forward to %s: %v", ErrStoreNotAvailable, addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: forward to %s: %v", ErrStoreNotAvailable, addr, err)
	}
	return resp.StatusCode, body, nil
}

// serveScan answers all, or range when isRange.
func (h *queryHandler) serveScan(w http.ResponseWriter, r *http.Request, isRange bool) {
	s := h.store(w, r, kindKeyValue, kindGlobal)
	if s == nil {
		return
	}
	open := func(st state.Store) state.Iterator { return st.All() }
	if isRange {
		from, _, err1 := s.parseKey(r.URL.Query().Get("from"))
		to, _, err2 := s.parseKey(r.URL.Query().Get("to"))
		if err := errors.Join(err1, err2); err != nil {
			writeErr(w, http.StatusBadRequest, fmt.Errorf("store %q: %w", s.name, err))
			return
		}
		open = func(st state.Store) state.Iterator { return st.Range(from, to) }
	}
	ans := scanAnswer{Store: s.name, Partitions: []int32{}, Entries: []scanEntry{}}
	if s.kind == kindGlobal {
		for _, it := range h.a.rt.Queries().Iterators(s.name, true, open) {
			part := runtime.LocalPart{Partition: -1}
			for it.Next() {
				part.Keys = append(part.Keys, slices.Clone(it.Key()))
				part.Values = append(part.Values, slices.Clone(it.Value()))
			}
			err := it.Err()
			_ = it.Close()
			if err == nil {
				err = h.appendPart(&ans, s, part)
			}
			if err != nil {
				writeErr(w, http.StatusInternalServerError, err)
				return
			}
		}
		writeJSON(w, http.StatusOK, ans)
		return
	}
	parts, err := h.a.rt.Queries().ScanOwned(s.name, open)
	if err == nil {
		for _, p := range parts {
			if err = h.appendPart(&ans, s, p); err != nil {
				break
			}
		}
	}
	if err != nil {
		writeErr(w, http.StatusInternalServerError, err)
		return
	}
	if r.Header.Get(ForwardedHeader) != "" {
		writeJSON(w, http.StatusOK, ans) // this instance's part only
		return
	}
	merged, err := h.fanOut(r, s, ans)
	if err != nil {
		writeErr(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, merged)
}

// appendPart adds a partition read here to ans.
func (h *queryHandler) appendPart(ans *scanAnswer, s *handledStore, p runtime.LocalPart) error {
	for i, kb := range p.Keys {
		k, err := s.keyOut(kb)
		if err != nil {
			return fmt.Errorf("store %q partition %d: decode key: %w", s.name, p.Partition, err)
		}
		var dec keyAnswer
		if err := h.setValue(&dec, s, p.Values[i], nil); err != nil {
			return fmt.Errorf("store %q partition %d: %w", s.name, p.Partition, err)
		}
		kj, err := json.Marshal(k)
		if err != nil {
			return err
		}
		vj, err := json.Marshal(dec.Value)
		if err != nil {
			return err
		}
		ans.Entries = append(ans.Entries, scanEntry{Key: kj, Value: vj, Partition: p.Partition})
	}
	if p.Partition >= 0 {
		ans.Partitions = append(ans.Partitions, p.Partition)
	}
	return nil
}

// fanOut asks every other instance holding tasks of s for its part of the
// scan and merges the parts with local (this instance's): each partition
// once, in partition order. It fails (retryably) unless every partition
// of the store was read.
func (h *queryHandler) fanOut(r *http.Request, s *handledStore, local scanAnswer) (scanAnswer, error) {
	sub, n, err := h.a.storeTasks(s.name)
	if err != nil {
		return scanAnswer{}, err
	}
	hosts, err := h.a.rt.QueryHosts()
	if err != nil {
		return scanAnswer{}, fmt.Errorf("store %q: %w", s.name, err)
	}
	answers := []scanAnswer{local}
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		lastErr error
	)
	for _, sh := range storeHosts(hosts, int32(sub)) {
		if sh.Addr == h.self || len(sh.Active) == 0 {
			continue
		}
		wg.Go(func() {
			var ans scanAnswer
			status, body, err := h.forward(r, sh.Addr)
			if err == nil && status != http.StatusOK {
				err = fmt.Errorf("%w: %s answered %d", ErrStoreNotAvailable, sh.Addr, status)
			}
			if err == nil {
				if jerr := json.Unmarshal(body, &ans); jerr != nil {
					err = fmt.Errorf("%w: %s answered: %v", ErrStoreNotAvailable, sh.Addr, jerr)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				lastErr = err
				return
			}
			answers = append(answers, ans)
		})
	}
	wg.Wait()
	byPart := make(map[int32][]scanEntry, n)
	seen := make(map[int32]bool, n)
	for _, ans := range answers {
		for _, p := range ans.Partitions {
			if seen[p] {
				continue // read twice (a task that moved meanwhile): keep the first
			}
			seen[p] = true
			byPart[p] = []scanEntry{}
			for _, e := range ans.Entries {
				if e.Partition == p {
					byPart[p] = append(byPart[p], e)
				}
			}
		}
	}
	out := scanAnswer{Store: s.name, Partitions: make([]int32, 0, n), Entries: []scanEntry{}}
	var missing []int32
	for p := range n {
		if !seen[p] {
			missing = append(missing, p)
			continue
		}
		out.Partitions = append(out.Partitions, p)
		out.Entries = append(out.Entries, byPart[p]...)
	}
	if len(missing) > 0 {
		err := fmt.Errorf("%w: store %q partitions %v were not read", ErrStoreNotAvailable, s.name, missing)
		if lastErr != nil {
			err = fmt.Errorf("%w (%v)", err, lastErr)
		}
		return scanAnswer{}, err
	}
	return out, nil
}
