package kafkatest

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// envTimeout bounds how long an existing cluster has to answer.
const envTimeout = 30 * time.Second

// fromEnv uses the cluster at the comma-separated addresses in list. It
// starts nothing; it waits, up to envTimeout, for the cluster to say which
// version it runs.
func fromEnv(ctx context.Context, list string) (*Broker, error) {
	var addrs []string
	for a := range strings.SplitSeq(list, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("no addresses in %q", list)
	}

	ctx, cancel := context.WithTimeout(ctx, envTimeout)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	tick := time.NewTicker(probeInterval)
	defer tick.Stop()
	for {
		version, err := clusterVersion(ctx, adm)
		if err == nil {
			return &Broker{Addrs: addrs, Version: version, Provider: "env"}, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("cluster did not answer within %v: %w", envTimeout, err)
		case <-tick.C:
		}
	}
}

// clusterVersion asks the cluster's brokers for their API versions and
// guesses the Kafka version from the first that answers.
func clusterVersion(ctx context.Context, adm *kadm.Client) (string, error) {
	versions, err := adm.ApiVersions(ctx)
	if err != nil {
		return "", err
	}
	for _, v := range versions.Sorted() {
		if v.Err == nil {
			return versionFromGuess(v.VersionGuess()), nil
		}
		err = v.Err
	}
	if err == nil {
		err = errors.New("metadata lists no brokers")
	}
	return "", err
}

var guessedVersion = regexp.MustCompile(`\bv(\d+(?:\.\d+)*)`)

// versionFromGuess turns a kversion guess such as "v4.1" or "at least v4.4"
// into "4.1" or "at least 4.4"; a guess naming no version is "unknown".
func versionFromGuess(guess string) string {
	if !guessedVersion.MatchString(guess) || strings.Contains(guess, "not even") {
		return "unknown"
	}
	return guessedVersion.ReplaceAllString(guess, "$1")
}
