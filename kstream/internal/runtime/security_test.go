package runtime

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
)

func TestFetchErrorsNameTheGroupOfAGroupFailure(t *testing.T) {
	w := &worker{cfg: &Config{AppID: "orders-app"}, Logger: slog.New(slog.DiscardHandler)}
	fs := kgo.Fetches{{Topics: []kgo.FetchTopic{{Partitions: []kgo.FetchPartition{{
		Partition: 0, Err: &kgo.ErrGroupSession{Err: kerr.GroupAuthorizationFailed},
	}}}}}}
	err := w.fetchErrors(fs)
	if !errors.Is(err, kerr.GroupAuthorizationFailed) {
		t.Fatalf("fetchErrors = %v, want GROUP_AUTHORIZATION_FAILED", err)
	}
	want := `kstream: consumer group "orders-app": not authorized (the principal needs READ and DESCRIBE on GROUP "orders-app"): `
	if !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("fetchErrors = %q, want it to start with %q", err, want)
	}

	fs = kgo.Fetches{{Topics: []kgo.FetchTopic{{Topic: "in", Partitions: []kgo.FetchPartition{{
		Partition: 3, Err: kerr.TopicAuthorizationFailed,
	}}}}}}
	if err := w.fetchErrors(fs); err == nil || !strings.HasPrefix(err.Error(), `kstream: fetch topic "in" partition 3: TOPIC_AUTHORIZATION_FAILED`) {
		t.Fatalf("fetchErrors = %v, want the topic and partition named", err)
	}
}

func TestSecurityOptionsReachClientOpts(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ClientOpts = []kgo.Opt{kgo.ClientID("x")}
	tc := &tls.Config{ServerName: "broker"}
	cfg.TLS, cfg.TLSSet = tc, true
	cfg.SASL, cfg.SASLSet = []sasl.Mechanism{plain.Auth{User: "u", Pass: "p"}.AsMechanism()}, true
	opts := securityOpts(cfg)
	if len(cfg.ClientOpts) != 1 || len(opts) != 3 {
		t.Fatalf("securityOpts: %d options (user's now %d), want 3 (and the user's 1 untouched)", len(opts), len(cfg.ClientOpts))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got, _ := cl.OptValue(kgo.DialTLSConfig).(*tls.Config)
	if got == nil || got == tc || got.ServerName != "broker" {
		t.Fatalf("DialTLSConfig = %p %+v, want a clone of %p", got, got, tc)
	}
	if mechs, _ := cl.OptValue(kgo.SASL).([]sasl.Mechanism); len(mechs) != 1 || mechs[0].Name() != "PLAIN" {
		t.Fatalf("SASL = %v, want PLAIN", mechs)
	}
}

func TestSecurityOptionsValidated(t *testing.T) {
	for name, set := range map[string]func(*Config){
		"nil TLS":  func(c *Config) { c.TLSSet = true },
		"no SASL":  func(c *Config) { c.SASLSet = true },
		"nil SASL": func(c *Config) { c.SASL, c.SASLSet = []sasl.Mechanism{nil}, true },
	} {
		cfg := DefaultConfig()
		cfg.AppID, cfg.Brokers = "app", []string{"127.0.0.1:9092"}
		set(&cfg)
		if err := cfg.Validate(); !errors.Is(err, engine.ErrConfig) {
			t.Errorf("%s: Validate = %v, want ErrConfig", name, err)
		}
	}
}
