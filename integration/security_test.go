package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/streamwork-go/streamwork/integration/kafkatest"
	"github.com/streamwork-go/streamwork/kstream"
)

// TestSecurity runs Apps against a broker of its own with TLS and SASL
// listeners and an authorizer: SCRAM over TLS, PLAIN without, and a user
// with only the ACLs an App needs, then without one of them. No password
// may appear in any log line (kgo's debug lines included) nor error.
func TestSecurity(t *testing.T) {
	users := map[string]string{"admin": newSecret(t), "streams": newSecret(t)}
	s := kafkatest.StartSecure(t, kafkatest.SecureOptions{Users: users})
	secrets := []string{users["admin"], users["streams"]}

	t.Run("Listeners", func(t *testing.T) {
		ctx := testContext(t)
		for _, c := range []struct {
			name  string
			addrs []string
			opts  []kgo.Opt
		}{
			{"SSL", s.SSL, []kgo.Opt{kgo.DialTLSConfig(s.TLSConfig())}},
			{"SASL_PLAINTEXT SCRAM-SHA-256", s.SASLPlaintext, []kgo.Opt{kgo.SASL(scram.Auth{User: "streams", Pass: users["streams"]}.AsSha256Mechanism())}},
			{"SASL_SSL SCRAM-SHA-512", s.SASLSSL, []kgo.Opt{kgo.DialTLSConfig(s.TLSConfig()), kgo.SASL(scram.Auth{User: "streams", Pass: users["streams"]}.AsSha512Mechanism())}},
			{"SASL_SSL PLAIN", s.SASLSSL, []kgo.Opt{kgo.DialTLSConfig(s.TLSConfig()), kgo.SASL(plain.Auth{User: "streams", Pass: users["streams"]}.AsMechanism())}},
		} {
			adm := kadm.NewClient(s.Client(t, append(c.opts, kgo.SeedBrokers(c.addrs...))...))
			md, err := adm.BrokerMetadata(ctx)
			if err != nil {
				t.Fatalf("%s: metadata: %v", c.name, err)
			}
			if len(md.Brokers) != 1 {
				t.Fatalf("%s: metadata lists %d brokers, want 1", c.name, len(md.Brokers))
			}
		}
		bad := kadm.NewClient(s.Client(t, kgo.SeedBrokers(s.SASLSSL...), kgo.DialTLSConfig(s.TLSConfig()),
			kgo.SASL(scram.Auth{User: "streams", Pass: "not-" + users["streams"]}.AsSha512Mechanism())))
		if _, err := bad.BrokerMetadata(ctx); !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Fatalf("metadata with a wrong password: %v, want SASL_AUTHENTICATION_FAILED", err)
		}
	})

	t.Run("ScramSHA512OverSASLSSL", func(t *testing.T) {
		ctx := testContext(t)
		wc := newSecureWordCount(t, s, "scram")
		a, logs := wc.start(t, s,
			kstream.Brokers(s.SASLSSL...), kstream.TLS(s.TLSConfig()),
			kstream.SASL(scram.Auth{User: "admin", Pass: users["admin"]}.AsSha512Mechanism()))
		wc.produceAndCheck(ctx, t, a)
		if err := a.stop(t); err != nil {
			t.Fatalf("Run: %v", err)
		}
		logs.requireNoSecret(t, secrets)
	})

	t.Run("PlainOverSASLPlaintext", func(t *testing.T) {
		ctx := testContext(t)
		wc := newSecureWordCount(t, s, "plain")
		a, logs := wc.start(t, s,
			kstream.Brokers(s.SASLPlaintext...),
			kstream.SASL(plain.Auth{User: "admin", Pass: users["admin"]}.AsMechanism()))
		wc.produceAndCheck(ctx, t, a)
		if err := a.stop(t); err != nil {
			t.Fatalf("Run: %v", err)
		}
		logs.requireNoSecret(t, secrets)
	})

	streams := []kstream.Opt{
		kstream.Brokers(s.SASLSSL...), kstream.TLS(s.TLSConfig()),
		kstream.SASL(scram.Auth{User: "streams", Pass: users["streams"]}.AsSha512Mechanism()),
	}

	t.Run("LeastPrivilegeACLs", func(t *testing.T) {
		ctx := testContext(t)
		wc := newSecureWordCount(t, s, "acl")
		grantApp(ctx, t, s, "User:streams", wc, appACLs{})
		a, logs := wc.start(t, s, streams...)
		wc.produceAndCheck(ctx, t, a)
		if err := a.stop(t); err != nil {
			t.Fatalf("Run: %v", err)
		}
		logs.requireNoSecret(t, secrets)
	})

	t.Run("NoWriteOnOutput", func(t *testing.T) {
		ctx := testContext(t)
		wc := newSecureWordCount(t, s, "acl-nowrite")
		grantApp(ctx, t, s, "User:streams", wc, appACLs{noOutputWrite: true})
		a, logs := wc.start(t, s, streams...)
		wc.produce(ctx, t)
		err := a.wait(t)
		logs.requireNoSecret(t, secrets, err)
		if want := `needs WRITE and DESCRIBE on TOPIC "` + wc.out + `"`; !errors.Is(err, kerr.TopicAuthorizationFailed) || !strings.Contains(err.Error(), want) {
			t.Fatalf("Run returned %v, want TOPIC_AUTHORIZATION_FAILED saying %s", err, want)
		}
	})

	t.Run("NoReadOnGroup", func(t *testing.T) {
		ctx := testContext(t)
		wc := newSecureWordCount(t, s, "acl-nogroup")
		grantApp(ctx, t, s, "User:streams", wc, appACLs{noGroupRead: true})
		a, logs := wc.start(t, s, streams...)
		wc.produce(ctx, t)
		err := a.wait(t)
		logs.requireNoSecret(t, secrets, err)
		if want := `needs READ and DESCRIBE on GROUP "` + wc.appID + `"`; !errors.Is(err, kerr.GroupAuthorizationFailed) || !strings.Contains(err.Error(), want) {
			t.Fatalf("Run returned %v, want GROUP_AUTHORIZATION_FAILED saying %s", err, want)
		}
	})
}

// newSecret returns a random password.
func newSecret(t testing.TB) string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "pw-" + hex.EncodeToString(b[:])
}

// secureWordCount is a word count (repartition and count, exactly-once)
// on topics and an application id of its own.
type secureWordCount struct {
	b              *kafkatest.Broker
	in, out, appID string
	want           map[string]int64
	lines          []string
}

func newSecureWordCount(t *testing.T, s *kafkatest.SecureBroker, prefix string) *secureWordCount {
	t.Helper()
	wc := &secureWordCount{b: s.Broker, in: newTopic(t, s.Broker, prefix+"-lines", 2), out: newTopic(t, s.Broker, prefix+"-counts", 2)}
	wc.appID = kafkatest.UniqueName(t, prefix)
	deleteTopicsAtEnd(t, s.Broker, wc.appID+"-"+wcRepartition+"-repartition", wc.appID+"-"+wcStore+"-changelog")
	wc.want = make(map[string]int64)
	wc.lines, _ = wordCorpus(7, 300, 40, wc.want)
	return wc
}

// start runs the word count with opts (which choose the listener and the
// credentials) and a logger that keeps every line, kgo's debug lines
// included.
func (wc *secureWordCount) start(t *testing.T, s *kafkatest.SecureBroker, opts ...kstream.Opt) (*runningApp, *capturedLogs) {
	t.Helper()
	logs := &capturedLogs{}
	all := append([]kstream.Opt{
		kstream.ApplicationID(wc.appID), kstream.Guarantee(kstream.ExactlyOnce),
		kstream.StateDir(t.TempDir()), kstream.CommitInterval(wcCommit),
	}, opts...)
	all = append(all, kstream.Logger(logs.logger(testLogger(t, wc.appID))))
	return startApp(t, s.Broker, wc.appID, wordCountTopology(t, wc.in, wc.out), all...), logs
}

// produce writes the corpus to the input topic (over the super user's
// plain listener).
func (wc *secureWordCount) produce(ctx context.Context, t *testing.T) {
	t.Helper()
	recs := lineRecords(wc.in, wc.lines, 0, 2)
	base := time.Now().Add(-2 * time.Hour) // the broker deletes by timestamp
	for i, r := range recs {
		r.Timestamp = base.Add(time.Duration(i) * time.Millisecond)
	}
	produce(ctx, t, producer(t, wc.b), recs)
}

// produceAndCheck writes the corpus and waits for the exact counts.
func (wc *secureWordCount) produceAndCheck(ctx context.Context, t *testing.T, a *runningApp) {
	t.Helper()
	wc.produce(ctx, t)
	newLastCounts(newReader(t, wc.b, wc.out), wc.out).waitCounts(ctx, t, wc.want, a)
}

// appACLs leaves out one of the ACLs an App needs.
type appACLs struct {
	noOutputWrite bool
	noGroupRead   bool
}

// grantApp gives principal what wc's App needs: READ and DESCRIBE on its
// input topic, WRITE and DESCRIBE on its output topic, ALL on topics and
// groups prefixed with the application id, WRITE and DESCRIBE on
// transactional ids prefixed with it, less what leave says.
func grantApp(ctx context.Context, t *testing.T, s *kafkatest.SecureBroker, principal string, wc *secureWordCount, leave appACLs) {
	t.Helper()
	out := []kadm.ACLOperation{kadm.OpWrite, kadm.OpDescribe}
	if leave.noOutputWrite {
		out = []kadm.ACLOperation{kadm.OpDescribe}
	}
	group := []kadm.ACLOperation{kadm.OpAll}
	if leave.noGroupRead {
		group = []kadm.ACLOperation{kadm.OpDescribe}
	}
	acls := []*kadm.ACLBuilder{
		kadm.NewACLs().Allow(principal).Topics(wc.in).Operations(kadm.OpRead, kadm.OpDescribe),
		kadm.NewACLs().Allow(principal).Topics(wc.out).Operations(out...),
		kadm.NewACLs().Allow(principal).Topics(wc.appID).ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpAll),
		kadm.NewACLs().Allow(principal).Groups(wc.appID).ResourcePatternType(kadm.ACLPatternPrefixed).Operations(group...),
		kadm.NewACLs().Allow(principal).TransactionalIDs(wc.appID).ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpWrite, kadm.OpDescribe),
	}
	adm := s.Admin(t)
	for _, b := range acls {
		res, err := adm.CreateACLs(ctx, b)
		if err != nil {
			t.Fatalf("create ACLs: %v", err)
		}
		for _, r := range res {
			if r.Err != nil {
				t.Fatalf("create ACL %v on %v %q: %v", r.Operation, r.Type, r.Name, r.Err)
			}
		}
	}
}

// capturedLogs keeps every line an App logs.
type capturedLogs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// logger returns a logger that keeps every line, at every level, and
// passes them on to next (which drops what its level does not want).
func (c *capturedLogs) logger(next *slog.Logger) *slog.Logger {
	all := slog.NewTextHandler(lockedWriter{c}, &slog.HandlerOptions{Level: slog.LevelDebug - 4})
	return slog.New(teeHandler{all, next.Handler()})
}

// requireNoSecret fails t if a secret appears in a logged line or in one
// of errs.
func (c *capturedLogs) requireNoSecret(t testing.TB, secrets []string, errs ...error) {
	t.Helper()
	c.mu.Lock()
	logged := c.buf.String()
	c.mu.Unlock()
	if logged == "" {
		t.Fatal("the App logged nothing: the capture does not work")
	}
	for _, sec := range secrets {
		if strings.Contains(logged, sec) {
			t.Errorf("a password appears in the App's log")
		}
		for _, err := range errs {
			if err != nil && strings.Contains(err.Error(), sec) {
				t.Errorf("a password appears in an error: %v", err)
			}
		}
	}
	t.Logf("checked %d bytes of the App's log for passwords", len(logged))
}

type lockedWriter struct{ c *capturedLogs }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	return w.c.buf.Write(p)
}

// teeHandler passes each record to two handlers.
type teeHandler struct{ a, b slog.Handler }

func (h teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.a.Enabled(ctx, l) || h.b.Enabled(ctx, l)
}

func (h teeHandler) Handle(ctx context.Context, r slog.Record) error {
	var errA, errB error
	if h.a.Enabled(ctx, r.Level) {
		errA = h.a.Handle(ctx, r.Clone())
	}
	if h.b.Enabled(ctx, r.Level) {
		errB = h.b.Handle(ctx, r)
	}
	return errors.Join(errA, errB)
}

func (h teeHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return teeHandler{h.a.WithAttrs(attrs), h.b.WithAttrs(attrs)}
}

func (h teeHandler) WithGroup(name string) slog.Handler {
	return teeHandler{h.a.WithGroup(name), h.b.WithGroup(name)}
}
