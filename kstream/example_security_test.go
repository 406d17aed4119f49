package kstream_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
)

// Connect over TLS (trusting a private CA when one is given) and
// authenticate with SCRAM-SHA-512: every client of the App gets both.
// New checks the options; Run connects.
func ExampleTLS() {
	roots := x509.NewCertPool()
	if pem, err := os.ReadFile(os.Getenv("KAFKA_CA_FILE")); err == nil {
		roots.AppendCertsFromPEM(pem)
	} else {
		roots = nil // the system's roots
	}
	b := kstream.NewBuilder()
	kstream.From(b, "orders", serde.String, serde.String).To("orders-copy", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = kstream.New(topo,
		kstream.ApplicationID("orders-copier"),
		kstream.Brokers("kafka-1.example.com:9093"),
		kstream.TLS(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}),
		kstream.SASL(scram.Auth{User: "orders-copier", Pass: os.Getenv("KAFKA_PASSWORD")}.AsSha512Mechanism()),
	)
	fmt.Println("valid:", err == nil)

	_, err = kstream.New(topo, kstream.ApplicationID("orders-copier"), kstream.Brokers("kafka-1.example.com:9093"), kstream.TLS(nil))
	fmt.Println("TLS(nil):", errors.Is(err, kstream.ErrConfig))
	// Output:
	// valid: true
	// TLS(nil): true
}
