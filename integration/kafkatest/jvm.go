package kafkatest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	// dataDirPrefix names the jvm provider's data dirs under os.TempDir().
	dataDirPrefix = "streamwork-kafka-"
	// ownerPIDFile holds the test process's PID in a data dir; a dir whose
	// owner is dead is stale.
	ownerPIDFile = "owner.pid"
	// brokerPIDFile holds the broker's PID (and process group) in a data dir.
	brokerPIDFile = "broker.pid"
	// brokerLogFile gets the broker's standard output and error.
	brokerLogFile = "broker.log"

	// readyTimeout bounds how long a started broker has to become usable.
	readyTimeout = 90 * time.Second
	// stopGrace is how long a broker has to stop after SIGTERM.
	stopGrace = 15 * time.Second
	// formatTimeout bounds formatting the broker's storage.
	formatTimeout = 60 * time.Second
	// launchAttempts is how often a broker is launched when its freshly
	// picked ports were taken before it could bind them.
	launchAttempts = 3
)

// log4jConfig keeps the broker's log to warnings, plus the line that says
// it started.
const log4jConfig = `status = error
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.out.ref = OUT
logger.server.name = kafka.server.KafkaRaftServer
logger.server.level = INFO
`

// startJVM runs Apache Kafka as a Java process with jars resolved by Maven.
func startJVM(ctx context.Context) (*Broker, error) {
	java, javaErr := exec.LookPath("java")
	mvn, mvnErr := exec.LookPath("mvn")
	var missing []string
	if javaErr != nil {
		missing = append(missing, "java (17 or newer)")
	}
	if mvnErr != nil {
		missing = append(missing, "mvn (Maven)")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s not found on PATH; install with: %s", strings.Join(missing, " and "), installHint)
	}

	removeStaleDataDirs()
	libs, err := resolveKafka(ctx, mvn)
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		b, err := launchJVM(ctx, java, libs)
		if err == nil || !errors.Is(err, errPortTaken) || attempt == launchAttempts {
			return b, err
		}
	}
}

// launchJVM formats a fresh data dir and runs one broker from it, returning
// once the broker serves metadata and topic admin.
func launchJVM(ctx context.Context, java, libs string) (*Broker, error) {
	jb, err := newJVMBroker(ctx, java, libs)
	if err != nil {
		return nil, err
	}
	if err := jb.start(ctx); err != nil {
		jb.remove()
		return nil, err
	}
	return jb.broker(), nil
}

// jvmBroker is one broker process and its data dir, which outlives the
// process: stop and start run it again on the same ports and data.
type jvmBroker struct {
	java, classpath, dir string
	jvmArgs              []string
	brokerPort           int
	props, logPath       string
	removeDir            func()

	proc       *process
	stopBroker func()
}

// brokerSpec is what a broker of its own adds to the plain configuration:
// ports beyond the plain listener's and the controller's, and configure,
// which is given every port (the plain listener's, the controller's, then
// the extra ones), writes its files into the data dir and returns
// server.properties lines (java.util.Properties keeps the last value of a
// key, so they override the plain lines) and arguments for the storage
// format.
type brokerSpec struct {
	extraPorts int
	configure  func(dir string, ports []int) (props, formatArgs []string, err error)
}

// newJVMBroker makes and formats a data dir for a broker on free ports.
func newJVMBroker(ctx context.Context, java, libs string) (*jvmBroker, error) {
	return newJVMBrokerSpec(ctx, java, libs, brokerSpec{})
}

// newJVMBrokerSpec makes and formats a data dir for a broker on free
// ports, configured as spec says.
func newJVMBrokerSpec(ctx context.Context, java, libs string, spec brokerSpec) (*jvmBroker, error) {
	dir, err := os.MkdirTemp("", dataDirPrefix)
	if err != nil {
		return nil, err
	}
	removeDir, ok := life.onShutdown(func() { os.RemoveAll(dir) })
	if !ok {
		return nil, errShuttingDown
	}
	jb := &jvmBroker{java: java, dir: dir, removeDir: removeDir, logPath: filepath.Join(dir, brokerLogFile)}
	ready := false
	defer func() {
		if !ready {
			removeDir()
		}
	}()
	if err := writePID(filepath.Join(dir, ownerPIDFile), os.Getpid()); err != nil {
		return nil, err
	}
	ports, err := freePorts(2 + spec.extraPorts)
	if err != nil {
		return nil, err
	}
	jb.brokerPort = ports[0]
	jb.props = filepath.Join(dir, "server.properties")
	props := serverProperties(dir, ports[0], ports[1])
	var formatArgs []string
	if spec.configure != nil {
		var extra []string
		if extra, formatArgs, err = spec.configure(dir, ports); err != nil {
			return nil, err
		}
		props += strings.Join(extra, "\n") + "\n"
	}
	if err := os.WriteFile(jb.props, []byte(props), 0o600); err != nil {
		return nil, err
	}
	log4j := filepath.Join(dir, "log4j2.properties")
	if err := os.WriteFile(log4j, []byte(log4jConfig), 0o644); err != nil {
		return nil, err
	}
	jb.classpath = filepath.Join(libs, "*") // java expands the wildcard itself
	jb.jvmArgs = []string{"-Djava.awt.headless=true", "-Dlog4j2.configurationFile=" + log4j}

	clusterID, err := newClusterID()
	if err != nil {
		return nil, err
	}
	fctx, cancel := context.WithTimeout(ctx, formatTimeout)
	defer cancel()
	args := append(slices.Clone(jb.jvmArgs), "-cp", jb.classpath, "kafka.tools.StorageTool",
		"format", "-t", clusterID, "-c", jb.props, "--standalone")
	format := exec.Command(java, append(args, formatArgs...)...)
	format.Dir = dir
	if out, err := runProcess(fctx, format); err != nil {
		return nil, fmt.Errorf("format broker storage in %s: %w\n%s", dir, err, tail(out, 40))
	}
	ready = true
	return jb, nil
}

// addr is the broker's bootstrap address.
func (jb *jvmBroker) addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(jb.brokerPort))
}

func (jb *jvmBroker) broker() *Broker {
	return &Broker{Addrs: []string{jb.addr()}, Version: kafkaVersion, Provider: "jvm"}
}

// start runs the broker process and returns once it serves metadata and
// topic admin; on failure the process is stopped.
func (jb *jvmBroker) start(ctx context.Context) error {
	logFile, err := os.OpenFile(jb.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close() // the child has its own descriptor
	args := append([]string{"-Xms256m", "-Xmx1g"}, jb.jvmArgs...)
	args = append(args, "-cp", jb.classpath, "kafka.Kafka", jb.props)
	cmd := exec.Command(jb.java, args...)
	cmd.Dir = jb.dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	proc, err := startProcess(cmd)
	if err != nil {
		return fmt.Errorf("start java: %w", err)
	}
	stopBroker, ok := life.onShutdown(func() { proc.stop(stopGrace) })
	if !ok {
		proc.stop(stopGrace)
		return errShuttingDown
	}
	if err := writePID(filepath.Join(jb.dir, brokerPIDFile), proc.pid()); err != nil {
		stopBroker()
		return err
	}
	if err := waitReady(ctx, jb.addr(), readyTimeout, proc.exited); err != nil {
		stopBroker()
		log, _ := os.ReadFile(jb.logPath)
		err = fmt.Errorf("broker at %s: %w\nlast lines of its log:\n%s", jb.addr(), err, tail(log, 40))
		if strings.Contains(string(log), "Address already in use") {
			err = fmt.Errorf("%w: %w", errPortTaken, err)
		}
		return err
	}
	jb.proc, jb.stopBroker = proc, stopBroker
	return nil
}

// stop stops the broker process (SIGTERM, then SIGKILL after stopGrace);
// the data dir stays.
func (jb *jvmBroker) stop() {
	if jb.stopBroker != nil {
		jb.stopBroker()
		jb.proc, jb.stopBroker = nil, nil
	}
}

// remove stops the broker and removes its data dir.
func (jb *jvmBroker) remove() {
	jb.stop()
	jb.removeDir()
}

// serverProperties configures a one-node KRaft broker and controller for
// transactions, with data under dir, and quick to start.
func serverProperties(dir string, brokerPort, controllerPort int) string {
	lines := []string{
		"process.roles=broker,controller",
		"node.id=1",
		fmt.Sprintf("controller.quorum.bootstrap.servers=127.0.0.1:%d", controllerPort),
		"controller.listener.names=CONTROLLER",
		fmt.Sprintf("listeners=PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d", brokerPort, controllerPort),
		fmt.Sprintf("advertised.listeners=PLAINTEXT://127.0.0.1:%d", brokerPort),
		"inter.broker.listener.name=PLAINTEXT",
		"listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
		"log.dirs=" + filepath.Join(dir, "logs"),
		"num.partitions=1",
		"default.replication.factor=1",
		"min.insync.replicas=1",
		"auto.create.topics.enable=false",
		"offsets.topic.replication.factor=1",
		"offsets.topic.num.partitions=1",
		"transaction.state.log.replication.factor=1",
		"transaction.state.log.min.isr=1",
		"transaction.state.log.num.partitions=1",
		"share.coordinator.state.topic.replication.factor=1",
		"share.coordinator.state.topic.min.isr=1",
		"group.initial.rebalance.delay.ms=0",
		"num.network.threads=2",
		"num.io.threads=4",
	}
	return strings.Join(lines, "\n") + "\n"
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick a free port: %w", err)
		}
		defer ln.Close() // held until all are picked, so they differ
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// newClusterID returns a random KRaft cluster ID: 16 random bytes in
// unpadded base64url, as kafka-storage random-uuid prints. Like Kafka's
// Uuid.randomUuid it never starts with '-': kafka-storage format would
// take such an id for an option ("--cluster-id expected one argument").
func newClusterID() (string, error) {
	for {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", err
		}
		if id := base64.RawURLEncoding.EncodeToString(b[:]); id[0] != '-' {
			return id, nil
		}
	}
}

// writePID writes pid to path.
func writePID(path string, pid int) error {
	return os.WriteFile(path, []byte(strconv.Itoa(pid)+"\n"), 0o644)
}
