package kafkatest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

const (
	// kafkaVersion is the Apache Kafka release the jvm provider runs.
	kafkaVersion = "4.3.1"
	// kafkaJar is the broker's own jar, which must be among the libs.
	kafkaJar = "kafka_2.13-" + kafkaVersion + ".jar"

	// resolveTimeout bounds one Maven resolve; a cold one on a slow
	// network can take minutes.
	resolveTimeout = 10 * time.Minute

	// resolvedMarker is written, last, into the cache dir once its libs
	// are complete; its presence is what says so.
	resolvedMarker = "resolved"
)

// kafkaPOM resolves the broker with its runtime dependencies. The Kafka
// artifact brings log4j-core but no SLF4J binding, so one is added (with
// the SLF4J API it binds to) to keep the broker's log for failure reports.
const kafkaPOM = `<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by streamwork's integration/kafkatest to fetch an Apache Kafka broker. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>io.streamwork.kafkatest</groupId>
  <artifactId>kafka-broker-libs</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>` + kafkaVersion + `</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-api</artifactId>
      <version>2.0.17</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j2-impl</artifactId>
      <version>2.25.4</version>
    </dependency>
  </dependencies>
</project>
`

// kafkaCacheDir is where the broker's jars live between runs:
// os.UserCacheDir()/streamwork/kafka-<version>.
func kafkaCacheDir() string {
	base, err := os.UserCacheDir()
	if err != nil {
		base = filepath.Join(os.TempDir(), "streamwork-cache")
	}
	return filepath.Join(base, "streamwork", "kafka-"+kafkaVersion)
}

// resolveKafka returns the directory holding the broker's jars, resolving
// them with mvn on first use. Parallel test processes share the cache: one
// resolves under an exclusive file lock while the others wait, then find
// the completion marker.
func resolveKafka(ctx context.Context, mvn string) (libs string, err error) {
	cache := kafkaCacheDir()
	libs = filepath.Join(cache, "libs")
	if resolved(cache) {
		return libs, nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	unlock, err := lockFile(filepath.Join(cache, ".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if resolved(cache) { // another process resolved it while we waited
		return libs, nil
	}

	began := time.Now()
	pom := filepath.Join(cache, "pom.xml")
	if err := os.WriteFile(pom, []byte(kafkaPOM), 0o644); err != nil {
		return "", err
	}
	tmp := filepath.Join(cache, "libs.partial")
	if err := os.RemoveAll(tmp); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	cmd := exec.Command(mvn, "-q", "-B", "-f", pom,
		"dependency:copy-dependencies",
		"-DoutputDirectory="+tmp,
		"-DincludeScope=runtime")
	cmd.Dir = cache
	if out, err := runProcess(ctx, cmd); err != nil {
		return "", fmt.Errorf("mvn could not fetch org.apache.kafka:kafka_2.13:%s (is the Maven repository reachable?): %w\n%s",
			kafkaVersion, err, tail(out, 40))
	}
	if _, err := os.Stat(filepath.Join(tmp, kafkaJar)); err != nil {
		return "", fmt.Errorf("mvn finished but %s is not among the fetched jars: %w", kafkaJar, err)
	}
	if err := os.RemoveAll(libs); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, libs); err != nil {
		return "", err
	}
	jars, _ := filepath.Glob(filepath.Join(libs, "*.jar"))
	marker := fmt.Sprintf("Apache Kafka %s: %d jars resolved in %v\n", kafkaVersion, len(jars), time.Since(began).Round(time.Millisecond))
	if err := writeFileAtomic(filepath.Join(cache, resolvedMarker), []byte(marker)); err != nil {
		return "", err
	}
	fmt.Fprintf(os.Stderr, "kafkatest: %s", marker)
	return libs, nil
}

// resolved reports whether cache holds a complete set of libs.
func resolved(cache string) bool {
	if _, err := os.Stat(filepath.Join(cache, resolvedMarker)); err != nil {
		return false
	}
	_, err := os.Stat(filepath.Join(cache, "libs", kafkaJar))
	return err == nil
}

// lockFile takes an exclusive flock on path, waiting for other holders.
// The lock goes with the file descriptor, so a killed holder releases it.
func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// writeFileAtomic writes data to a temporary file beside path and renames it
// into place, so readers see all of it or none.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// tail returns at most the last n lines of out.
func tail(out []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
