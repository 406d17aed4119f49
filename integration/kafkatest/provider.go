package kafkatest

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// BrokersEnv names the environment variable that selects an existing
// cluster: a comma-separated list of host:port bootstrap addresses.
const BrokersEnv = "KAFKA_BROKERS"

// installHint tells how to get what the jvm provider needs.
const installHint = "apt-get install -y openjdk-17-jre-headless maven"

// start finds a broker with the first provider that applies: KAFKA_BROKERS,
// else a Docker engine, else a Java process. It runs once per process.
func start() (*Broker, error) {
	if list := strings.TrimSpace(os.Getenv(BrokersEnv)); list != "" {
		b, err := fromEnv(life.ctx, list)
		if err != nil {
			return nil, fmt.Errorf("provider env (%s=%s): %w", BrokersEnv, list, err)
		}
		return b, nil
	}

	var errs []string
	if err := dockerAnswers(life.ctx); err != nil {
		errs = append(errs, fmt.Sprintf("provider testcontainers: no Docker engine answered: %v", err))
	} else {
		b, err := startContainer(life.ctx)
		if err == nil {
			return b, nil
		}
		errs = append(errs, fmt.Sprintf("provider testcontainers: %v", err))
		fmt.Fprintf(os.Stderr, "kafkatest: testcontainers failed, trying the jvm provider: %v\n", err)
	}

	b, err := startJVM(life.ctx)
	if err == nil {
		return b, nil
	}
	errs = append(errs, fmt.Sprintf("provider jvm: %v", err))

	return nil, errors.New("every broker provider failed:\n" +
		"- provider env: " + BrokersEnv + " is not set\n" +
		"- " + strings.Join(errs, "\n- ") + "\n" +
		"To fix, do one of: set " + BrokersEnv + "=host:port to use a running cluster " +
		"(docker compose up -d gives one at localhost:9092); start a Docker engine; " +
		"or install Java 17+ and Maven (" + installHint + "; ./integration/run does this).")
}
