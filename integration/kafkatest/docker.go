package kafkatest

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

const (
	// containerImage is the image the testcontainers provider runs.
	containerImage = "apache/kafka:4.1.0"
	// containerVersion is the Apache Kafka version in containerImage.
	containerVersion = "4.1.0"

	// containerPort is the listener published to the host.
	containerPort = "9092/tcp"

	// advertisedGate is where we write the advertised listeners once the
	// host port is known; the container's shell waits for it before it
	// boots Kafka, since advertised.listeners cannot change at run time.
	advertisedGate = "/tmp/streamwork-advertised-listeners"

	// dockerProbeTimeout bounds how long a Docker engine has to answer.
	dockerProbeTimeout = 5 * time.Second
	// containerTimeout bounds pulling, starting and readying the container.
	containerTimeout = 5 * time.Minute
)

// dockerAnswers reports whether a Docker engine answers quickly. A missing
// engine is the common case on machines that use the jvm provider, so this
// must fail fast rather than hang.
func dockerAnswers(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, dockerProbeTimeout)
	defer cancel()
	answered := make(chan error, 1)
	go func() {
		p, err := testcontainers.NewDockerProvider()
		if err != nil {
			answered <- err
			return
		}
		answered <- p.Health(ctx) // Health closes p
	}()
	select {
	case err := <-answered:
		return err
	case <-ctx.Done():
		return fmt.Errorf("no answer within %v: %w", dockerProbeTimeout, ctx.Err())
	}
}

// containerEnv configures the image's KRaft single node for transactions.
// PLAINTEXT is published to the host; BROKER is the in-container listener
// between the broker and itself.
func containerEnv(clusterID string) map[string]string {
	return map[string]string{
		"CLUSTER_ID":                                             clusterID,
		"KAFKA_NODE_ID":                                          "1",
		"KAFKA_PROCESS_ROLES":                                    "broker,controller",
		"KAFKA_CONTROLLER_QUORUM_VOTERS":                         "1@localhost:9094",
		"KAFKA_CONTROLLER_LISTENER_NAMES":                        "CONTROLLER",
		"KAFKA_LISTENERS":                                        "PLAINTEXT://0.0.0.0:9092,BROKER://0.0.0.0:9093,CONTROLLER://0.0.0.0:9094",
		"KAFKA_LISTENER_SECURITY_PROTOCOL_MAP":                   "PLAINTEXT:PLAINTEXT,BROKER:PLAINTEXT,CONTROLLER:PLAINTEXT",
		"KAFKA_INTER_BROKER_LISTENER_NAME":                       "BROKER",
		"KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR":                 "1",
		"KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS":                     "1",
		"KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR":         "1",
		"KAFKA_TRANSACTION_STATE_LOG_MIN_ISR":                    "1",
		"KAFKA_TRANSACTION_STATE_LOG_NUM_PARTITIONS":             "1",
		"KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": "1",
		"KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR":            "1",
		"KAFKA_MIN_INSYNC_REPLICAS":                              "1",
		"KAFKA_DEFAULT_REPLICATION_FACTOR":                       "1",
		"KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS":                 "0",
		"KAFKA_NUM_PARTITIONS":                                   "1",
		"KAFKA_AUTO_CREATE_TOPICS_ENABLE":                        "false",
	}
}

// startContainer runs containerImage with testcontainers and waits until it
// serves metadata and topic admin. Ryuk, testcontainers' reaper, removes
// the container should this process die before shutdown terminates it.
func startContainer(ctx context.Context) (*Broker, error) {
	ctx, cancel := context.WithTimeout(ctx, containerTimeout)
	defer cancel()

	clusterID, err := newClusterID()
	if err != nil {
		return nil, err
	}
	// The image declares CMD /etc/kafka/docker/run; we run it ourselves
	// once the gate file holds the advertised listeners.
	boot := "while [ ! -s " + advertisedGate + " ]; do sleep 0.1; done; " +
		"KAFKA_ADVERTISED_LISTENERS=\"$(cat " + advertisedGate + ")\"; export KAFKA_ADVERTISED_LISTENERS; " +
		"exec /etc/kafka/docker/run"

	ctr, err := testcontainers.Run(ctx, containerImage,
		testcontainers.WithExposedPorts(containerPort),
		testcontainers.WithEnv(containerEnv(clusterID)),
		testcontainers.WithEntrypoint("/bin/sh", "-c", boot),
		testcontainers.WithCmd(),
		testcontainers.WithLifecycleHooks(testcontainers.ContainerLifecycleHooks{
			PostStarts: []testcontainers.ContainerHook{openAdvertisedGate},
		}),
	)
	ready := false
	if ctr != nil {
		terminate, ok := life.onShutdown(func() {
			ctx, cancel := context.WithTimeout(context.Background(), stopGrace+5*time.Second)
			defer cancel()
			_ = ctr.Terminate(ctx)
		})
		if !ok {
			return nil, errShuttingDown
		}
		defer func() {
			if !ready {
				terminate()
			}
		}()
	}
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", containerImage, err)
	}

	host, err := ctr.Host(ctx)
	if err != nil {
		return nil, fmt.Errorf("container host: %w", err)
	}
	port, err := ctr.MappedPort(ctx, containerPort)
	if err != nil {
		return nil, fmt.Errorf("mapped port: %w", err)
	}
	addr := net.JoinHostPort(host, port.Port())
	if err := waitReady(ctx, addr, readyTimeout, nil); err != nil {
		return nil, fmt.Errorf("broker at %s: %w\nlast lines of the container's log:\n%s", addr, err, containerLogTail(ctr))
	}
	ready = true
	return &Broker{Addrs: []string{addr}, Version: containerVersion, Provider: "testcontainers"}, nil
}

// openAdvertisedGate writes the host-reachable advertised listeners into
// the container, which then boots Kafka.
func openAdvertisedGate(ctx context.Context, c testcontainers.Container) error {
	if err := wait.ForMappedPort(containerPort).WaitUntilReady(ctx, c); err != nil {
		return fmt.Errorf("wait for mapped port: %w", err)
	}
	host, err := c.Host(ctx)
	if err != nil {
		return fmt.Errorf("container host: %w", err)
	}
	port, err := c.MappedPort(ctx, containerPort)
	if err != nil {
		return fmt.Errorf("mapped port: %w", err)
	}
	listeners := "PLAINTEXT://" + net.JoinHostPort(host, port.Port()) + ",BROKER://localhost:9093"
	return c.CopyToContainer(ctx, []byte(listeners), advertisedGate, 0o644)
}

// containerLogTail returns the last lines of the container's log, for
// reporting a broker that did not become ready.
func containerLogTail(c testcontainers.Container) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	logs, err := c.Logs(ctx)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer logs.Close()
	out, _ := io.ReadAll(logs)
	return tail(out, 40)
}
