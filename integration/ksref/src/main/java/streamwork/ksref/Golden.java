package streamwork.ksref;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.function.Function;

import org.apache.kafka.common.serialization.LongSerializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.common.utils.AppInfoParser;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.TestInputTopic;
import org.apache.kafka.streams.TestOutputTopic;
import org.apache.kafka.streams.TopologyTestDriver;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.EmitStrategy;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KGroupedStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.SessionWindowedDeserializer;
import org.apache.kafka.streams.kstream.SessionWindowedSerializer;
import org.apache.kafka.streams.kstream.SessionWindows;
import org.apache.kafka.streams.kstream.SlidingWindows;
import org.apache.kafka.streams.kstream.TimeWindowedDeserializer;
import org.apache.kafka.streams.kstream.TimeWindowedSerializer;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.kstream.Windowed;
import org.apache.kafka.streams.kstream.internals.SessionWindow;
import org.apache.kafka.streams.kstream.internals.TimeWindow;

/**
 * Runs streamwork's windowed-aggregation scenarios through Kafka Streams'
 * TopologyTestDriver and writes what comes out as golden files, which
 * integration/ksref_test.go compares streamwork's output with.
 *
 * <p>Every scenario pipes (key, long value, timestamp) records, in order, to
 * topic "in" of a topology that groups by key, windows, aggregates (count,
 * or the values in arrival order as "1,2,3") and writes each result to
 * "out" with the windowed key decoded to "key start end". Its golden file
 * has comment lines ("#": the version, the scenario, one "# input key value
 * timestamp" per input record) and then one line per output record, in
 * order: "key start end value timestamp", value "null" for a tombstone.
 *
 * <p>Usage: Golden OUTDIR (./run passes testdata).
 */
public final class Golden {
    private Golden() {}

    private static final String IN = "in";
    private static final String OUT = "out";

    record Input(String key, long value, long ts) {}

    record Scenario(String name, String about, Function<KGroupedStream<String, Long>, KTable<Windowed<String>, ?>> build,
            List<Input> inputs) {}

    static Input in(String key, long value, long ts) {
        return new Input(key, value, ts);
    }

    /** Inputs with value 1 each, for counts. */
    static List<Input> ones(Object... keyTs) {
        List<Input> res = new ArrayList<>();
        for (int i = 0; i < keyTs.length; i += 2) {
            res.add(in((String) keyTs[i], 1, ((Number) keyTs[i + 1]).longValue()));
        }
        return res;
    }

    static Duration ms(long ms) {
        return Duration.ofMillis(ms);
    }

    /** The list aggregate: the values of a window, comma-separated, in arrival order. */
    static KTable<Windowed<String>, String> list(org.apache.kafka.streams.kstream.TimeWindowedKStream<String, Long> w) {
        return w.aggregate(() -> "", (k, v, agg) -> agg.isEmpty() ? v.toString() : agg + "," + v,
                Materialized.with(Serdes.String(), Serdes.String()));
    }

    static List<Scenario> scenarios() {
        List<Scenario> s = new ArrayList<>();
        s.add(new Scenario("tumbling", "tumbling size 5000 no grace, count",
                g -> g.windowedBy(TimeWindows.ofSizeWithNoGrace(ms(5000))).count(),
                ones("a", 0, "a", 4999, "a", 5000)));
        s.add(new Scenario("hopping", "hopping size 5000 advance 3000 no grace, count",
                g -> g.windowedBy(TimeWindows.ofSizeWithNoGrace(ms(5000)).advanceBy(ms(3000))).count(),
                ones("a", 4000, "a", 6500)));
        s.add(new Scenario("tumbling-max-timestamp", "tumbling size 10000 grace 10000, count: result timestamps are the max",
                g -> g.windowedBy(TimeWindows.ofSizeAndGrace(ms(10000), ms(10000))).count(),
                ones("a", 7000, "a", 2000)));
        s.add(new Scenario("tumbling-late-boundary", "tumbling size 5000 grace 1000, count: late boundary",
                g -> g.windowedBy(TimeWindows.ofSizeAndGrace(ms(5000), ms(1000))).count(),
                ones("a", 5999, "a", 4999, "a", 6000, "a", 4999)));
        s.add(new Scenario("sliding-kip450", "sliding difference 5000 grace 30000, list aggregate: KIP-450's example",
                g -> list(g.windowedBy(SlidingWindows.ofTimeDifferenceAndGrace(ms(5000), ms(30000)))),
                List.of(in("a", 1, 8000), in("a", 2, 9200), in("a", 3, 12400))));
        s.add(new Scenario("sliding-early-out-of-order",
                "sliding difference 5000 grace 30000, list aggregate: records earlier than the difference, and out of order",
                g -> list(g.windowedBy(SlidingWindows.ofTimeDifferenceAndGrace(ms(5000), ms(30000)))),
                List.of(in("a", 1, 1000), in("a", 2, 3000), in("a", 3, 2000), in("a", 4, 7000), in("a", 5, 6500))));
        s.add(new Scenario("session-merge-grace10000", "session gap 5000 grace 10000, count: a record bridges two sessions",
                g -> g.windowedBy(SessionWindows.ofInactivityGapAndGrace(ms(5000), ms(10000))).count(),
                ones("a", 0, "a", 10000, "a", 5000)));
        s.add(new Scenario("session-merge-grace0", "session gap 5000 grace 0, count: the first session has closed",
                g -> g.windowedBy(SessionWindows.ofInactivityGapAndGrace(ms(5000), ms(0))).count(),
                ones("a", 0, "a", 10000, "a", 5000)));
        s.add(new Scenario("session-out-of-order", "session gap 5000 grace 10000, count: two keys, out of order, a record inside a session",
                g -> g.windowedBy(SessionWindows.ofInactivityGapAndGrace(ms(5000), ms(10000))).count(),
                ones("a", 0, "b", 1000, "a", 3000, "a", 2000, "b", 20000, "a", 30000)));
        s.add(new Scenario("emit-final-tumbling", "tumbling size 5000 grace 2000, count, EmitStrategy.onWindowClose()",
                g -> g.windowedBy(TimeWindows.ofSizeAndGrace(ms(5000), ms(2000)))
                        .emitStrategy(EmitStrategy.onWindowClose()).count(),
                ones("a", 1000, "b", 2000, "a", 4000, "a", 6999, "a", 3000, "b", 7000, "a", 100, "a", 7001)));
        return s;
    }

    static Properties config(Path stateDir) {
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, "ksref");
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, "unused:9092");
        p.put(StreamsConfig.STATE_DIR_CONFIG, stateDir.toString());
        // No record cache: every update of a window goes downstream.
        p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
        // Emit-final is throttled by wall-clock time (1000ms by default);
        // the driver's wall clock stands still, so throttle none.
        p.put(StreamsConfig.InternalConfig.EMIT_INTERVAL_MS_KSTREAMS_WINDOWED_AGGREGATION, 0L);
        return p;
    }

    static List<String> run(Scenario sc, Path stateDir) {
        StreamsBuilder b = new StreamsBuilder();
        KGroupedStream<String, Long> g = b.stream(IN, Consumed.with(Serdes.String(), Serdes.Long()))
                .groupByKey(Grouped.with(Serdes.String(), Serdes.Long()));
        KTable<Windowed<String>, ?> table = sc.build().apply(g);
        table.toStream()
                .map((wk, v) -> KeyValue.pair(wk.key() + " " + wk.window().start() + " " + wk.window().end(),
                        v == null ? null : v.toString()))
                .to(OUT, Produced.with(Serdes.String(), Serdes.String()));
        List<String> lines = new ArrayList<>();
        try (TopologyTestDriver d = new TopologyTestDriver(b.build(), config(stateDir), Instant.parse("2020-01-01T00:00:00Z"))) {
            TestInputTopic<String, Long> in = d.createInputTopic(IN, new StringSerializer(), new LongSerializer());
            TestOutputTopic<String, String> out = d.createOutputTopic(OUT, new StringDeserializer(), new StringDeserializer());
            for (Input r : sc.inputs()) {
                in.pipeInput(r.key(), r.value(), r.ts());
            }
            for (var r : out.readRecordsToList()) {
                lines.add(r.key() + " " + (r.value() == null ? "null" : r.value()) + " " + r.timestamp());
            }
        }
        return lines;
    }

    static String header() {
        return "# Kafka Streams " + AppInfoParser.getVersion()
                + " TopologyTestDriver, statestore.cache.max.bytes=0. Generated by integration/ksref/run: do not edit.\n";
    }

    static void write(Path file, String text) throws IOException {
        Files.writeString(file, text, StandardCharsets.UTF_8);
        System.out.println("ksref: wrote " + file);
    }

    record TimeKey(String key, long start, long end) {}

    /**
     * serde.golden: one line per windowed key, "time|session key start end
     * hex", hex being TimeWindowedSerializer's or SessionWindowedSerializer's
     * output with a StringSerializer inside. Each is read back with the
     * matching deserializer (time windows: window size end - start) and must
     * give the same key and window.
     */
    static String serdes() {
        StringBuilder sb = new StringBuilder(header());
        sb.append("# kind key start end hex: TimeWindowedSerializer / SessionWindowedSerializer(StringSerializer)\n");
        HexFormat hex = HexFormat.of();
        List<TimeKey> times = List.of(new TimeKey("a", 0, 5000), new TimeKey("a", 5000, 10000),
                new TimeKey("user-42", 1700000000000L, 1700000060000L), new TimeKey("ключ", 3000, 8000),
                new TimeKey("k", Long.MAX_VALUE - 1000, Long.MAX_VALUE));
        try (var ser = new TimeWindowedSerializer<String>(new StringSerializer())) {
            for (TimeKey t : times) {
                Windowed<String> w = new Windowed<>(t.key(), new TimeWindow(t.start(), t.end()));
                byte[] bytes = ser.serialize("out", w);
                try (var de = new TimeWindowedDeserializer<String>(new StringDeserializer(), t.end() - t.start())) {
                    Windowed<String> back = de.deserialize("out", bytes);
                    if (!back.equals(w)) {
                        throw new IllegalStateException("time-windowed " + w + " read back as " + back);
                    }
                }
                sb.append("time ").append(t.key()).append(' ').append(t.start()).append(' ').append(t.end()).append(' ')
                        .append(hex.formatHex(bytes)).append('\n');
            }
        }
        List<TimeKey> sessions = List.of(new TimeKey("a", 0, 0), new TimeKey("a", 0, 10000),
                new TimeKey("user-42", 1700000000000L, 1700000300000L), new TimeKey("ключ", 5000, 10000));
        try (var ser = new SessionWindowedSerializer<String>(new StringSerializer());
                var de = new SessionWindowedDeserializer<String>(new StringDeserializer())) {
            for (TimeKey t : sessions) {
                Windowed<String> w = new Windowed<>(t.key(), new SessionWindow(t.start(), t.end()));
                byte[] bytes = ser.serialize("out", w);
                Windowed<String> back = de.deserialize("out", bytes);
                if (!back.equals(w)) {
                    throw new IllegalStateException("session-windowed " + w + " read back as " + back);
                }
                sb.append("session ").append(t.key()).append(' ').append(t.start()).append(' ').append(t.end()).append(' ')
                        .append(hex.formatHex(bytes)).append('\n');
            }
        }
        return sb.toString();
    }

    public static void main(String[] args) throws IOException {
        Path dir = Path.of(args.length > 0 ? args[0] : "testdata");
        Files.createDirectories(dir);
        List<String> only = Arrays.asList(args).subList(Math.min(1, args.length), args.length);
        Map<String, String> files = new LinkedHashMap<>();
        for (Scenario sc : scenarios()) {
            if (!only.isEmpty() && !only.contains(sc.name())) {
                continue;
            }
            Path stateDir = Files.createTempDirectory("ksref-" + sc.name());
            StringBuilder sb = new StringBuilder(header());
            sb.append("# scenario: ").append(sc.about()).append('\n');
            for (Input r : sc.inputs()) {
                sb.append("# input ").append(r.key()).append(' ').append(r.value()).append(' ').append(r.ts()).append('\n');
            }
            sb.append("# key start end value timestamp\n");
            for (String line : run(sc, stateDir)) {
                sb.append(line).append('\n');
            }
            files.put(sc.name(), sb.toString());
            deleteTree(stateDir);
        }
        if (only.isEmpty() || only.contains("serde")) {
            files.put("serde", serdes());
        }
        for (var e : files.entrySet()) {
            write(dir.resolve(e.getKey() + ".golden"), e.getValue());
        }
    }

    static void deleteTree(Path p) throws IOException {
        try (var walk = Files.walk(p)) {
            for (Path q : walk.sorted((x, y) -> y.getNameCount() - x.getNameCount()).toList()) {
                Files.deleteIfExists(q);
            }
        }
    }
}
