// Package kafkatest gives a test package one real Apache Kafka 4.x broker,
// started at most once per test binary and shared by every test in it.
//
// A package opts in with a TestMain and asks for the broker in each test:
//
//	func TestMain(m *testing.M) { kafkatest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		b := kafkatest.Require(t)
//		topic := kafkatest.UniqueName(t, "orders")
//		b.CreateTopic(t, topic, 3, nil)
//		cl := b.Client(t, kgo.ConsumeTopics(topic))
//		...
//	}
//
// The first [Require] starts the broker; later calls return the same one.
// [Main] stops it after the tests ran (and on SIGINT or SIGTERM) and removes
// its data. Tests must therefore name their topics and groups apart, which
// [UniqueName] does.
//
// # Where the broker comes from
//
// Providers are tried in this order:
//
//  1. env: KAFKA_BROKERS is set (comma-separated host:port list). That
//     cluster is used as is and nothing is started or stopped. If it does not
//     answer, Require fails; no other provider is tried.
//  2. testcontainers: a Docker engine answers within a few seconds. The
//     apache/kafka:4.1.0 image is started in KRaft mode, configured for
//     transactions on one node.
//  3. jvm: Apache Kafka 4.3.1 runs as a plain Java process. Its jars
//     (org.apache.kafka:kafka_2.13:4.3.1 and its runtime dependencies) are
//     resolved once with Maven into os.UserCacheDir()/streamwork/kafka-4.3.1
//     and reused by later runs. This needs java (17 or newer) and mvn on PATH:
//     apt-get install -y openjdk-17-jre-headless maven. The broker listens
//     on free loopback ports, keeps its data in a fresh directory under
//     os.TempDir() named streamwork-kafka-*, and dies with the test process.
//
// When the broker is ready, one line is printed to standard output:
//
//	integration: broker Apache Kafka 4.3.1 via jvm at 127.0.0.1:40123
//
// # Failing, not skipping
//
// If no provider works, Require fails the test with every provider's error
// and what to install. It never skips silently. The one opt-out is
// STREAMWORK_SKIP_INTEGRATION=1, which makes Require skip with a loud
// message; CI never sets it.
//
// # Concurrency
//
// Require, UniqueName and the Broker methods are safe to call from parallel
// tests. Test binaries of different packages each start their own broker;
// the shared Maven cache is guarded by a file lock.
package kafkatest
