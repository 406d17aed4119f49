package streamwork.bench;

import java.time.Duration;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.EmitStrategy;
import org.apache.kafka.streams.kstream.TimeWindowedKStream;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.processor.StateRestoreListener;

/**
 * Runs one benchmark workload with Kafka Streams until it is killed:
 *
 *   java streamwork.bench.Main WORKLOAD GUARANTEE BROKERS APP_ID STATE_DIR INPUT TABLE OUTPUT COMMIT_MS [restore]
 *
 * WORKLOAD is W1 (filter + map), W2 (count by a re-keyed field), W3
 * (tumbling one-minute windowed count), W3f (the same, emit final) or W4
 * (stream-table join);
 * GUARANTEE is at_least_once or exactly_once_v2; COMMIT_MS 0 keeps the
 * default commit interval; "restore" makes it print the changelog records
 * it restored and how long that took once it runs. The topologies are the
 * ones bench/workload.go builds with Streamwork.
 */
public final class Main {
    public static void main(String[] args) throws Exception {
        String workload = args[0], guarantee = args[1], brokers = args[2], appId = args[3], stateDir = args[4];
        String input = args[5], table = args[6], output = args[7];
        long commitMs = Long.parseLong(args[8]);
        boolean restoreMode = args.length > 9 && args[9].equals("restore");

        StreamsBuilder b = new StreamsBuilder();
        KStream<String, String> in = b.stream(input, Consumed.with(Serdes.String(), Serdes.String()));
        switch (workload) {
            case "W1":
                in.filter((k, v) -> field(v, "amt=") % 4 != 0)
                  .mapValues(v -> v.toUpperCase())
                  .to(output, Produced.with(Serdes.String(), Serdes.String()));
                break;
            case "W2":
                in.groupBy((k, v) -> category(v), Grouped.with(Serdes.String(), Serdes.String()))
                  .count()
                  .toStream()
                  .to(output, Produced.with(Serdes.String(), Serdes.Long()));
                break;
            case "W3":
            case "W3f":
                TimeWindowedKStream<String, String> windowed = in.groupByKey(Grouped.with(Serdes.String(), Serdes.String()))
                  .windowedBy(TimeWindows.ofSizeWithNoGrace(Duration.ofMinutes(1)));
                if (workload.equals("W3f")) {
                    windowed = windowed.emitStrategy(EmitStrategy.onWindowClose());
                }
                windowed.count()
                  .toStream()
                  .map((wk, c) -> KeyValue.pair(wk.key() + "@" + wk.window().start(), c))
                  .to(output, Produced.with(Serdes.String(), Serdes.Long()));
                break;
            case "W4":
                KTable<String, String> t = b.table(table, Consumed.with(Serdes.String(), Serdes.String()));
                in.join(t, (v, tv) -> v + "|" + tv)
                  .to(output, Produced.with(Serdes.String(), Serdes.String()));
                break;
            default:
                throw new IllegalArgumentException("unknown workload " + workload);
        }

        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, guarantee);
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
        p.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);
        if (commitMs > 0) {
            p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, commitMs);
        }
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
        // Emit-final looks for closed windows on every record, as Streamwork
        // does, not at most once a second (the internal default), so that the last
        // closed windows are emitted without more input.
        p.put(StreamsConfig.InternalConfig.EMIT_INTERVAL_MS_KSTREAMS_WINDOWED_AGGREGATION, 0L);

        KafkaStreams ks = new KafkaStreams(b.build(), p);
        CountDownLatch done = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            ks.close(Duration.ofSeconds(10));
            done.countDown();
        }));
        if (restoreMode) {
            // Restore mode: report the changelog records restored and the
            // seconds from the first store starting to restore until the
            // instance runs (every active task restored), once.
            AtomicLong restored = new AtomicLong();
            AtomicLong firstStart = new AtomicLong();
            AtomicBoolean reported = new AtomicBoolean();
            ks.setGlobalStateRestoreListener(new StateRestoreListener() {
                @Override
                public void onRestoreStart(TopicPartition tp, String store, long start, long end) {
                    firstStart.compareAndSet(0, System.nanoTime());
                }

                @Override
                public void onBatchRestored(TopicPartition tp, String store, long batchEnd, long n) {
                    restored.addAndGet(n);
                }

                @Override
                public void onRestoreEnd(TopicPartition tp, String store, long total) {
                }
            });
            ks.setStateListener((now, before) -> {
                if (now == KafkaStreams.State.RUNNING && firstStart.get() != 0 && reported.compareAndSet(false, true)) {
                    System.out.printf("bench-restore records=%d seconds=%f%n", restored.get(),
                        (System.nanoTime() - firstStart.get()) / 1e9);
                    System.out.flush();
                }
            });
        }
        ks.setUncaughtExceptionHandler(e -> {
            e.printStackTrace();
            System.exit(1);
            return null;
        });
        ks.start();
        done.await();
    }

    /** The number after name in v ("id=...,cat=c00042,amt=0017,pad=..."). */
    static int field(String v, String name) {
        int i = v.indexOf(name) + name.length();
        int j = v.indexOf(',', i);
        return Integer.parseInt(v.substring(i, j < 0 ? v.length() : j));
    }

    /** The category field of v, "c00042". */
    static String category(String v) {
        int i = v.indexOf("cat=") + 4;
        return v.substring(i, v.indexOf(',', i));
    }
}
