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
import java.util.function.BiFunction;
import java.util.function.Function;

import org.apache.kafka.common.serialization.LongSerializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;
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
import org.apache.kafka.streams.kstream.JoinWindows;
import org.apache.kafka.streams.kstream.Joined;
import org.apache.kafka.streams.kstream.KGroupedStream;
import org.apache.kafka.streams.kstream.KGroupedTable;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.SessionWindowedDeserializer;
import org.apache.kafka.streams.kstream.SessionWindowedSerializer;
import org.apache.kafka.streams.kstream.SessionWindows;
import org.apache.kafka.streams.kstream.SlidingWindows;
import org.apache.kafka.streams.kstream.StreamJoined;
import org.apache.kafka.streams.kstream.Suppressed;
import org.apache.kafka.streams.kstream.Suppressed.BufferConfig;
import org.apache.kafka.streams.kstream.TimeWindowedDeserializer;
import org.apache.kafka.streams.kstream.TimeWindowedKStream;
import org.apache.kafka.streams.kstream.TimeWindowedSerializer;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.kstream.Windowed;
import org.apache.kafka.streams.kstream.internals.SessionWindow;
import org.apache.kafka.streams.kstream.internals.TimeWindow;

/**
 * Runs streamwork's aggregation, windowing, suppression and join (stream-stream, stream-table,
 * table-table, foreign-key) scenarios through
 * Kafka Streams' TopologyTestDriver and writes what comes out as golden
 * files, which integration/ksref_test.go compares streamwork's output with.
 *
 * <p>Every scenario pipes (key, value, timestamp) records, in order, to one
 * input topic ("in", or the scenario's own): String keys, Long values (or
 * String values where the scenario says), a null value being a tombstone.
 * Join scenarios pipe String records to two topics, "left" and "right", in
 * the order given (each input names its topic), and join them.
 * Windowed scenarios group by key, window, aggregate (count, or the values
 * in arrival order as "1,2,3") and write each result to "out" with the
 * windowed key decoded to "key start end"; the others write their table's
 * results with the key as it is. A golden file has comment lines ("#": the
 * version, the scenario, one "# input key value timestamp" per input record,
 * the columns; a join scenario's input lines are "topic key value timestamp")
 * and then one line per output record, in order: "key start
 * end value timestamp" (windowed) or "key value timestamp", value "null" for
 * a tombstone.
 *
 * <p>Usage: Golden OUTDIR (./run passes testdata).
 */
public final class Golden {
    private Golden() {}

    private static final String IN = "in";
    private static final String OUT = "out";

    private static final String LEFT = "left";
    private static final String RIGHT = "right";

    /**
     * An input record: value a Long, a String, or null for a tombstone;
     * topic null for the scenario's topic, else the topic it is piped to
     * (join scenarios).
     */
    record Input(String topic, String key, Object value, long ts) {
        Input(String key, Object value, long ts) {
            this(null, key, value, ts);
        }

        String line() {
            return (topic == null ? "" : topic + " ") + key + " " + (value == null ? "null" : value.toString()) + " " + ts;
        }
    }

    /**
     * A scenario: build makes the topology that reads topic (String keys;
     * String values if stringValues, else Long) and returns the stream that
     * goes to "out", key and value already as text; windowed says its keys
     * are "key start end".
     */
    record Scenario(String name, String about, String topic, boolean stringValues, boolean windowed,
            Function<StreamsBuilder, KStream<String, String>> build, List<Input> inputs) {}

    /** A windowed scenario on "in": agg aggregates the stream grouped by key. */
    static Scenario windowed(String name, String about,
            Function<KGroupedStream<String, Long>, KTable<Windowed<String>, ?>> agg, List<Input> inputs) {
        return new Scenario(name, about, IN, false, true, b -> windowedOut(agg.apply(grouped(b))), inputs);
    }

    /** A scenario on topic (values Long, or String if stringValues) whose table's results go to "out" as they are. */
    static Scenario plain(String name, String about, String topic, boolean stringValues,
            Function<StreamsBuilder, KTable<String, ?>> table, List<Input> inputs) {
        return new Scenario(name, about, topic, stringValues, false, b -> out(table.apply(b)), inputs);
    }

    /**
     * A join scenario: join joins "left" and "right" (String keys and
     * values); its inputs name their topics and are piped in order.
     */
    static Scenario join(String name, String about,
            BiFunction<KStream<String, String>, KStream<String, String>, KStream<String, String>> join, List<Input> inputs) {
        return new Scenario(name, about, null, true, false, b -> join.apply(joinInput(b, LEFT), joinInput(b, RIGHT)), inputs);
    }

    /** A self-join scenario: join joins "left" with itself; its inputs go to "left". */
    static Scenario selfJoin(String name, String about,
            Function<KStream<String, String>, KStream<String, String>> join, List<Input> inputs) {
        return new Scenario(name, about, null, true, false, b -> join.apply(joinInput(b, LEFT)), inputs);
    }

    /**
     * A scenario of topics of its own (String keys and values): build makes
     * the topology and returns the stream that goes to "out"; its inputs
     * name their topics and are piped in order.
     */
    static Scenario topics(String name, String about, Function<StreamsBuilder, KStream<String, String>> build, List<Input> inputs) {
        return new Scenario(name, about, null, true, false, build, inputs);
    }

    /** An input to topic: value a String, or null for a tombstone. */
    static Input to(String topic, String key, String value, long ts) {
        return new Input(topic, key, value, ts);
    }

    static KTable<String, String> table(StreamsBuilder b, String topic) {
        return b.table(topic, Consumed.with(Serdes.String(), Serdes.String()));
    }

    static Joined<String, String, String> tableJoined() {
        return Joined.with(Serdes.String(), Serdes.String(), Serdes.String());
    }

    static KStream<String, String> joinInput(StreamsBuilder b, String topic) {
        return b.stream(topic, Consumed.with(Serdes.String(), Serdes.String()));
    }

    static StreamJoined<String, String, String> joined() {
        return StreamJoined.with(Serdes.String(), Serdes.String(), Serdes.String());
    }

    /** A join side's value, "nil" for a missing one. */
    static String show(String v) {
        return v == null ? "nil" : v;
    }

    static KStream<String, String> innerJoin(KStream<String, String> l, KStream<String, String> r, JoinWindows w) {
        return l.join(r, (a, b) -> a + "+" + b, w, joined());
    }

    static KStream<String, String> leftJoin(KStream<String, String> l, KStream<String, String> r, JoinWindows w) {
        return l.leftJoin(r, (a, b) -> a + "+" + show(b), w, joined());
    }

    static KStream<String, String> outerJoin(KStream<String, String> l, KStream<String, String> r, JoinWindows w) {
        return l.outerJoin(r, (a, b) -> show(a) + "+" + show(b), w, joined());
    }

    static Input left(String key, String value, long ts) {
        return new Input(LEFT, key, value, ts);
    }

    static Input right(String key, String value, long ts) {
        return new Input(RIGHT, key, value, ts);
    }

    static KGroupedStream<String, Long> grouped(StreamsBuilder b) {
        return b.stream(IN, Consumed.with(Serdes.String(), Serdes.Long()))
                .groupByKey(Grouped.with(Serdes.String(), Serdes.Long()));
    }

    static KStream<String, String> windowedOut(KTable<Windowed<String>, ?> table) {
        return table.toStream()
                .map((wk, v) -> KeyValue.pair(wk.key() + " " + wk.window().start() + " " + wk.window().end(),
                        v == null ? null : v.toString()));
    }

    static KStream<String, String> out(KTable<String, ?> table) {
        return table.toStream().mapValues(v -> v == null ? null : v.toString());
    }

    static Input in(String key, long value, long ts) {
        return new Input(key, value, ts);
    }

    static Input in(String key, String value, long ts) {
        return new Input(key, value, ts);
    }

    static Input tombstone(String key, long ts) {
        return new Input(key, null, ts);
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
    static KTable<Windowed<String>, String> list(TimeWindowedKStream<String, Long> w) {
        return w.aggregate(() -> "", (k, v, agg) -> agg.isEmpty() ? v.toString() : agg + "," + v,
                Materialized.with(Serdes.String(), Serdes.String()));
    }

    static List<Scenario> scenarios() {
        List<Scenario> s = new ArrayList<>();
        List<Input> tumblingFinal = ones("a", 1000, "b", 2000, "a", 4000, "a", 6999, "a", 3000, "b", 7000, "a", 100, "a", 7001);
        s.add(windowed("tumbling", "tumbling size 5000 no grace, count",
                g -> g.windowedBy(TimeWindows.ofSizeWithNoGrace(ms(5000))).count(),
                ones("a", 0, "a", 4999, "a", 5000)));
        s.add(windowed("hopping", "hopping size 5000 advance 3000 no grace, count",
                g -> g.windowedBy(TimeWindows.ofSizeWithNoGrace(ms(5000)).advanceBy(ms(3000))).count(),
                ones("a", 4000, "a", 6500)));
        s.add(windowed("tumbling-max-timestamp", "tumbling size 10000 grace 10000, count: result timestamps are the max",
                g -> g.windowedBy(TimeWindows.ofSizeAndGrace(ms(10000), ms(10000))).count(),
                ones("a", 7000, "a", 2000)));
        s.add(windowed("tumbling-late-boundary", "tumbling size 5000 grace 1000, count: late boundary",
                g -> g.windowedBy(TimeWindows.ofSizeAndGrace(ms(5000), ms(1000))).count(),
                ones("a", 5999, "a", 4999, "a", 6000, "a", 4999)));
        s.add(windowed("sliding-kip450", "sliding difference 5000 grace 30000, list aggregate: KIP-450's example",
                g -> list(g.windowedBy(SlidingWindows.ofTimeDifferenceAndGrace(ms(5000), ms(30000)))),
                List.of(in("a", 1, 8000), in("a", 2, 9200), in("a", 3, 12400))));
        s.add(windowed("sliding-early-out-of-order",
                "sliding difference 5000 grace 30000, list aggregate: records earlier than the difference, and out of order",
                g -> list(g.windowedBy(SlidingWindows.ofTimeDifferenceAndGrace(ms(5000), ms(30000)))),
                List.of(in("a", 1, 1000), in("a", 2, 3000), in("a", 3, 2000), in("a", 4, 7000), in("a", 5, 6500))));
        s.add(windowed("session-merge-grace10000", "session gap 5000 grace 10000, count: a record bridges two sessions",
                g -> g.windowedBy(SessionWindows.ofInactivityGapAndGrace(ms(5000), ms(10000))).count(),
                ones("a", 0, "a", 10000, "a", 5000)));
        s.add(windowed("session-merge-grace0", "session gap 5000 grace 0, count: the first session has closed",
                g -> g.windowedBy(SessionWindows.ofInactivityGapAndGrace(ms(5000), ms(0))).count(),
                ones("a", 0, "a", 10000, "a", 5000)));
        s.add(windowed("session-out-of-order", "session gap 5000 grace 10000, count: two keys, out of order, a record inside a session",
                g -> g.windowedBy(SessionWindows.ofInactivityGapAndGrace(ms(5000), ms(10000))).count(),
                ones("a", 0, "b", 1000, "a", 3000, "a", 2000, "b", 20000, "a", 30000)));
        s.add(windowed("emit-final-tumbling", "tumbling size 5000 grace 2000, count, EmitStrategy.onWindowClose()",
                g -> g.windowedBy(TimeWindows.ofSizeAndGrace(ms(5000), ms(2000)))
                        .emitStrategy(EmitStrategy.onWindowClose()).count(),
                tumblingFinal));

        s.add(plain("count-max-timestamp", "groupByKey, count: a result's timestamp is the largest of the aggregate's records'", IN, false,
                b -> grouped(b).count(),
                ones("a", 7000, "a", 2000, "a", 9000)));
        s.add(plain("table-groupby-count", "table users (String values), groupBy city, count: a row moves between groups, result timestamps",
                "users", true,
                b -> users(b).count(),
                List.of(in("ann", "oslo", 5000), in("bob", "oslo", 3000), in("ann", "rome", 4000))));
        s.add(plain("table-groupby-count-same-group",
                "table users (String values), groupBy city, count: an update within a group gives one result (KIP-904)",
                "users", true,
                b -> users(b).count(),
                List.of(in("ann", "oslo", 5000), in("bob", "oslo", 3000), in("bob", "oslo", 6000))));
        s.add(plain("suppress-time-limit", "table, suppress(untilTimeLimit(10s, unbounded())): tombstones too", IN, false,
                b -> b.table(IN, Consumed.with(Serdes.String(), Serdes.Long()))
                        .suppress(Suppressed.untilTimeLimit(Duration.ofSeconds(10), BufferConfig.unbounded())),
                List.of(in("a", 1, 0), in("a", 2, 3000), in("b", 1, 4000), in("a", 3, 10000), in("a", 4, 12000),
                        tombstone("b", 13000), in("x", 1, 25000))));

        s.add(windowed("suppress-window-closes-tumbling",
                "tumbling size 5000 grace 2000, count, suppress(untilWindowCloses(unbounded()))",
                g -> g.windowedBy(TimeWindows.ofSizeAndGrace(ms(5000), ms(2000))).count()
                        .suppress(Suppressed.untilWindowCloses(BufferConfig.unbounded())),
                tumblingFinal));
        s.add(windowed("sliding-emit-final", "sliding difference 5000 grace 0, list aggregate, EmitStrategy.onWindowClose() (KIP-825)",
                g -> list(g.windowedBy(SlidingWindows.ofTimeDifferenceAndGrace(ms(5000), ms(0)))
                        .emitStrategy(EmitStrategy.onWindowClose())),
                List.of(in("a", 1, 1000), in("a", 2, 6000), in("a", 3, 12000), in("a", 4, 20000))));
        List<Input> sessionFinal = ones("a", 0, "a", 4000, "b", 9000, "b", 9001, "a", 9000, "b", 30000);
        s.add(windowed("session-emit-final", "session gap 5000 grace 0, count, EmitStrategy.onWindowClose()",
                g -> g.windowedBy(SessionWindows.ofInactivityGapAndGrace(ms(5000), ms(0)))
                        .emitStrategy(EmitStrategy.onWindowClose()).count(),
                sessionFinal));
        s.add(windowed("session-suppress", "session gap 5000 grace 0, count, suppress(untilWindowCloses(unbounded()))",
                g -> g.windowedBy(SessionWindows.ofInactivityGapAndGrace(ms(5000), ms(0))).count()
                        .suppress(Suppressed.untilWindowCloses(BufferConfig.unbounded())),
                sessionFinal));

        // Stream-stream joins: the scenarios of kstream/join_dsl_test.go,
        // and out-of-order records for left and outer joins.
        s.add(join("join-inner", "left.join(right), difference 10000 no grace: a tombstone on the left",
                (l, r) -> innerJoin(l, r, JoinWindows.ofTimeDifferenceWithNoGrace(ms(10000))),
                List.of(left("a", "L1", 1000), right("a", "R1", 5000), right("a", "R2", 20000), left("a", "L2", 15000),
                        right("b", "R3", 15000), left("a", null, 16000))));
        s.add(join("join-left",
                "left.leftJoin(right), difference 10000 grace 2000: unmatched left once its window closes, a late left record",
                (l, r) -> leftJoin(l, r, JoinWindows.ofTimeDifferenceAndGrace(ms(10000), ms(2000))),
                List.of(left("a", "L1", 1000), left("b", "L2", 2000), right("a", "R1", 11000), right("c", "R9", 13000),
                        right("c", "R9", 14001), left("x", "L3", 1000))));
        s.add(join("join-outer", "left.outerJoin(right), difference 5000 no grace, after 2000: unmatched records of both sides",
                (l, r) -> outerJoin(l, r, JoinWindows.ofTimeDifferenceWithNoGrace(ms(5000)).after(ms(2000))),
                List.of(left("a", "L1", 1000), right("b", "R1", 2000), right("a", "R2", 4000), left("z", "Z", 20000))));
        s.add(selfJoin("join-self", "stream.join(stream) of one stream, difference 5000 no grace",
                st -> innerJoin(st, st, JoinWindows.ofTimeDifferenceWithNoGrace(ms(5000))),
                List.of(left("a", "1", 0), left("a", "2", 1000))));
        List<Input> joinOutOfOrder = List.of(left("a", "L1", 10000), right("a", "R1", 12000), left("b", "L2", 8000),
                right("b", "R2", 6000), left("c", "L3", 5000), right("b", "R5", 9000), right("d", "R3", 11000), left("a", "L4", 20000),
                left("a", "L5", 11000), right("a", "R4", 14000), left("z", "Z", 40000));
        s.add(join("join-left-out-of-order",
                "left.leftJoin(right), difference 5000 grace 3000: out of order within the grace, left a@11000 past it (right a@12000 still stored)",
                (l, r) -> leftJoin(l, r, JoinWindows.ofTimeDifferenceAndGrace(ms(5000), ms(3000))),
                joinOutOfOrder));
        s.add(join("join-outer-out-of-order",
                "left.outerJoin(right), difference 5000 grace 3000: out of order within the grace, left a@11000 past it (right a@12000 still stored)",
                (l, r) -> outerJoin(l, r, JoinWindows.ofTimeDifferenceAndGrace(ms(5000), ms(3000))),
                joinOutOfOrder));

        // Stream-table joins: TestStreamTableJoin and
        // TestStreamJoinsAggregationTable of kstream/join_dsl_test.go.
        List<Input> streamTable = List.of(to("prices", "a", "1", 0), to("orders", "a", "x", 5), to("prices", "a", "2", 10),
                to("orders", "a", "y", 15), to("orders", "b", "z", 20), to("prices", "a", null, 25), to("orders", "a", "w", 30));
        s.add(topics("stream-table-join-inner", "orders.join(prices table): a table update, a key without a row, a deleted row",
                b -> joinInput(b, "orders").join(table(b, "prices"), (v, p) -> v + "+" + p, tableJoined()),
                streamTable));
        s.add(topics("stream-table-join-left", "orders.leftJoin(prices table): a table update, a key without a row, a deleted row",
                b -> joinInput(b, "orders").leftJoin(table(b, "prices"), (v, p) -> v + "+" + show(p), tableJoined()),
                streamTable));
        s.add(topics("stream-table-join-count", "views.join(clicks.groupByKey().count()): a stream joined with an aggregation's table",
                b -> {
                    KTable<String, Long> counts = joinInput(b, "clicks").groupByKey(Grouped.with(Serdes.String(), Serdes.String())).count();
                    return joinInput(b, "views").join(counts, (v, n) -> v + " after " + n + " clicks",
                            Joined.with(Serdes.String(), Serdes.String(), Serdes.Long()));
                },
                List.of(to("clicks", "u", "c1", 0), to("clicks", "u", "c2", 1), to("views", "u", "home", 2))));

        // Table-table joins: TestTableTableJoins.
        List<Input> tableTable = List.of(to("l", "a", "L1", 1), to("r", "a", "R1", 2), to("r", "b", "R2", 3), to("l", "a", "L2", 4),
                to("r", "a", null, 5), to("l", "a", null, 6), to("r", "b", null, 7), to("l", "c", null, 8));
        s.add(topics("table-table-join-inner", "l.join(r), tables: updates and deletes on both sides, a delete of a missing row",
                b -> out(table(b, "l").join(table(b, "r"), (x, y) -> x + "+" + y)),
                tableTable));
        s.add(topics("table-table-join-left", "l.leftJoin(r), tables: updates and deletes on both sides, a delete of a missing row",
                b -> out(table(b, "l").leftJoin(table(b, "r"), (x, y) -> x + "+" + show(y))),
                tableTable));
        s.add(topics("table-table-join-outer", "l.outerJoin(r), tables: updates and deletes on both sides, a delete of a missing row",
                b -> out(table(b, "l").outerJoin(table(b, "r"), (x, y) -> show(x) + "+" + show(y))),
                tableTable));

        s.add(topics("table-table-join-outer-timestamps",
                "l.outerJoin(r), tables: updates older than the other side's row, on both sides (result timestamps)",
                b -> out(table(b, "l").outerJoin(table(b, "r"), (x, y) -> show(x) + "+" + show(y))),
                List.of(to("l", "a", "L1", 10), to("r", "a", "R1", 5), to("l", "b", "L2", 8), to("r", "b", "R2", 20),
                        to("l", "a", "L3", 15), to("r", "a", null, 2), to("l", "b", null, 1))));

        // Foreign-key joins: TestForeignKeyJoins (an order's value is its
        // product's key).
        List<Input> fk = List.of(to("products", "p1", "Pen", 1), to("orders", "o1", "p1", 2), to("orders", "o2", "p2", 3),
                to("products", "p2", "Ink", 4), to("orders", "o1", "p2", 5), to("products", "p1", "Pencil", 6),
                to("products", "p2", null, 7), to("orders", "o1", null, 8));
        s.add(topics("fk-join-inner",
                "orders.join(products, order -> product, joiner): an order before its product, an order moving, products renamed and deleted",
                b -> out(table(b, "orders").join(table(b, "products"), p -> p, (p, name) -> p + "+" + name)),
                fk));
        s.add(topics("fk-join-left",
                "orders.leftJoin(products, order -> product, joiner): an order before its product, an order moving, products renamed and deleted",
                b -> out(table(b, "orders").leftJoin(table(b, "products"), p -> p, (p, name) -> p + "+" + show(name))),
                fk));
        return s;
    }

    /** The users table (user, city) grouped by city. */
    static KGroupedTable<String, String> users(StreamsBuilder b) {
        return b.table("users", Consumed.with(Serdes.String(), Serdes.String()))
                .groupBy((user, city) -> KeyValue.pair(city, user), Grouped.with(Serdes.String(), Serdes.String()));
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
        // So are a left or outer join's unmatched records (1000ms by
        // default): emit them as soon as their window has closed.
        p.put(StreamsConfig.InternalConfig.EMIT_INTERVAL_MS_KSTREAMS_OUTER_JOIN_SPURIOUS_RESULTS_FIX, 0L);
        return p;
    }

    @SuppressWarnings("unchecked")
    static List<String> run(Scenario sc, Path stateDir) {
        StreamsBuilder b = new StreamsBuilder();
        sc.build().apply(b).to(OUT, Produced.with(Serdes.String(), Serdes.String()));
        List<String> lines = new ArrayList<>();
        try (TopologyTestDriver d = new TopologyTestDriver(b.build(), config(stateDir), Instant.parse("2020-01-01T00:00:00Z"))) {
            Serializer<?> vs = sc.stringValues() ? new StringSerializer() : new LongSerializer();
            Map<String, TestInputTopic<String, Object>> ins = new LinkedHashMap<>();
            TestOutputTopic<String, String> out = d.createOutputTopic(OUT, new StringDeserializer(), new StringDeserializer());
            for (Input r : sc.inputs()) {
                String topic = r.topic() != null ? r.topic() : sc.topic();
                ins.computeIfAbsent(topic, t -> d.createInputTopic(t, new StringSerializer(), (Serializer<Object>) vs))
                        .pipeInput(r.key(), r.value(), r.ts());
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
                sb.append("# input ").append(r.line()).append('\n');
            }
            sb.append(sc.windowed() ? "# key start end value timestamp\n" : "# key value timestamp\n");
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
