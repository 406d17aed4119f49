package kafkatest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// SecureOptions configures a broker started by [StartSecure].
type SecureOptions struct {
	// Users maps user names to passwords. Each user can authenticate with
	// SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN on both SASL listeners.
	// The user "admin" is a super user. Names and passwords may hold
	// letters, digits, '.', '_' and '-'.
	Users map[string]string
}

// SecureBroker is a broker of one test's own with TLS and SASL listeners
// and an authorizer (Kafka's StandardAuthorizer: what no ACL allows is
// denied). It always runs as a Java process and is removed when the test
// ends.
//
// Its listeners:
//
//   - Addrs (of the embedded Broker): PLAINTEXT. Its principal,
//     User:ANONYMOUS, is a super user, as the KRaft controller listener
//     (PLAINTEXT too) needs it to be; the inter-broker listener. The
//     Broker's helpers (Client, Admin, CreateTopic) use it, so a test sets
//     up topics and ACLs there.
//   - SSL: TLS with a certificate of a CA made for this broker
//     ([SecureBroker.TLSConfig] trusts it); clients present no
//     certificate, so their principal is User:ANONYMOUS (a super user).
//   - SASLPlaintext and SASLSSL: SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN
//     for [SecureOptions.Users]; the principal is User:<name>.
type SecureBroker struct {
	*Broker

	// SSL is the TLS listener's address.
	SSL []string
	// SASLPlaintext is the SASL listener's address without TLS.
	SASLPlaintext []string
	// SASLSSL is the SASL listener's address with TLS.
	SASLSSL []string

	caPEM []byte
	jb    *jvmBroker
}

// safeToken is what user names and passwords may hold: nothing that
// would need quoting in a JAAS config or a --add-scram argument.
var safeToken = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// StartSecure starts a broker for t alone with TLS and SASL listeners, the
// users of opts, and an authorizer. It fails t when Java or Maven is
// missing (./integration/run installs them) or an option is invalid.
func StartSecure(t testing.TB, opts SecureOptions) *SecureBroker {
	t.Helper()
	names := make([]string, 0, len(opts.Users))
	for name, pw := range opts.Users {
		if !safeToken.MatchString(name) {
			t.Fatalf("kafkatest: user name %q may only hold letters, digits, '.', '_' and '-'", name)
		}
		if !safeToken.MatchString(pw) {
			t.Fatalf("kafkatest: the password of user %q may only hold letters, digits, '.', '_' and '-'", name)
		}
		names = append(names, name)
	}
	slices.Sort(names)
	s := &SecureBroker{}
	spec := brokerSpec{extraPorts: 3, configure: func(dir string, ports []int) ([]string, []string, error) {
		ca, err := writeCerts(dir)
		if err != nil {
			return nil, nil, err
		}
		s.caPEM = ca
		local := func(port int) []string { return []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(port))} }
		s.SSL, s.SASLPlaintext, s.SASLSSL = local(ports[2]), local(ports[3]), local(ports[4])
		return secureProperties(dir, ports, names, opts.Users), scramArgs(names, opts.Users), nil
	}}
	s.jb = startOwn(t, "secure", spec)
	t.Cleanup(s.jb.remove)
	s.Broker = s.jb.broker()
	t.Logf("kafkatest: secure broker Apache Kafka %s: PLAINTEXT %s, SSL %s, SASL_PLAINTEXT %s, SASL_SSL %s, users %v",
		kafkaVersion, s.Addrs[0], s.SSL[0], s.SASLPlaintext[0], s.SASLSSL[0], names)
	return s
}

// TLSConfig returns a new TLS client configuration that trusts the
// broker's CA (and nothing else).
func (s *SecureBroker) TLSConfig() *tls.Config {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.caPEM)
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// CACertPEM returns the broker's CA certificate, PEM encoded.
func (s *SecureBroker) CACertPEM() []byte { return slices.Clone(s.caPEM) }

// secureProperties returns the server.properties lines of a secure broker:
// ports are the plain listener's, the controller's, then SSL,
// SASL_PLAINTEXT and SASL_SSL.
func secureProperties(dir string, ports []int, names []string, users map[string]string) []string {
	addr := func(name string, port int) string { return fmt.Sprintf("%s://127.0.0.1:%d", name, port) }
	advertised := []string{addr("PLAINTEXT", ports[0]), addr("SSL", ports[2]), addr("SASL_PLAINTEXT", ports[3]), addr("SASL_SSL", ports[4])}
	listeners := slices.Insert(slices.Clone(advertised), 1, addr("CONTROLLER", ports[1]))
	plain := "org.apache.kafka.common.security.plain.PlainLoginModule required"
	for _, n := range names {
		plain += fmt.Sprintf(` user_%s="%s"`, n, users[n])
	}
	plain += ";"
	const scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
	lines := []string{
		"listeners=" + strings.Join(listeners, ","),
		"advertised.listeners=" + strings.Join(advertised, ","),
		"listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL",
		"inter.broker.listener.name=PLAINTEXT",
		"sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512,PLAIN",
		"ssl.keystore.type=PEM",
		"ssl.keystore.location=" + filepath.Join(dir, "broker.pem"),
		"ssl.truststore.type=PEM",
		"ssl.truststore.location=" + filepath.Join(dir, "ca.pem"),
		"ssl.client.auth=none",
		"authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
		"super.users=User:ANONYMOUS;User:admin",
	}
	for _, l := range []string{"sasl_plaintext", "sasl_ssl"} {
		lines = append(lines,
			"listener.name."+l+".plain.sasl.jaas.config="+plain,
			"listener.name."+l+".scram-sha-256.sasl.jaas.config="+scram,
			"listener.name."+l+".scram-sha-512.sasl.jaas.config="+scram,
		)
	}
	return lines
}

// scramArgs returns the storage format's arguments that give each user
// SCRAM-SHA-256 and SCRAM-SHA-512 credentials.
func scramArgs(names []string, users map[string]string) []string {
	var args []string
	for _, n := range names {
		for _, mech := range []string{"SCRAM-SHA-256", "SCRAM-SHA-512"} {
			args = append(args, "--add-scram", fmt.Sprintf("%s=[name=%s,password=%s]", mech, n, users[n]))
		}
	}
	return args
}

// writeCerts makes a CA and a broker certificate for 127.0.0.1 and
// localhost, and writes dir/ca.pem (the CA certificate) and dir/broker.pem
// (the broker's PKCS#8 key and its certificate chain). It returns the CA
// certificate, PEM encoded.
func writeCerts(dir string) ([]byte, error) {
	now := time.Now()
	caKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "streamwork test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("make the CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("make the broker certificate: %w", err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	var keystore []byte
	keystore = append(keystore, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})...)
	keystore = append(keystore, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	keystore = append(keystore, caPEM...)
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), caPEM, 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "broker.pem"), keystore, 0o600); err != nil {
		return nil, err
	}
	return caPEM, nil
}
