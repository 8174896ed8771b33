// The Java client's side of `cargo xtask perf compare`'s transactional workload. Kafka's own
// ProducerPerformance commits its transactions by time (--transaction-duration-ms), not every N
// records, so this program does what the peers in ../src/bin do: it takes their produce flags,
// sends --messages keyless records of --size bytes in transactions of --transaction-size
// records (each begun, filled and committed in turn; no per-record callback, the commit
// answers for every record), timed from the first send to the last commit, and prints their
// one JSON result line. xtask compiles it with the JDK the brokers run on (perf/java.rs).

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public final class TransactionalProducerPerformance {
    private static final String CLIENT = "java";

    public static void main(String[] args) {
        if (args.length == 0 || !args[0].equals("produce") || args.length % 2 == 0) {
            fail("usage: TransactionalProducerPerformance produce --topic T --transaction-size N "
                    + "[--bootstrap ADDR] [--messages N] [--size B] [--acks 0|1|all] "
                    + "[--idempotence true|false] [--linger-ms MS] [--batch-size BYTES] "
                    + "[--compression TYPE]");
        }
        Map<String, String> flags = new LinkedHashMap<>();
        for (int i = 1; i < args.length; i += 2) {
            flags.put(args[i], args[i + 1]);
        }
        String bootstrap = take(flags, "--bootstrap", "127.0.0.1:9092");
        String topic = take(flags, "--topic", "");
        long messages = Long.parseLong(take(flags, "--messages", "1000000"));
        int size = Integer.parseInt(take(flags, "--size", "100"));
        String acks = take(flags, "--acks", "1");
        boolean idempotence = Boolean.parseBoolean(take(flags, "--idempotence", "false"));
        long lingerMs = Long.parseLong(take(flags, "--linger-ms", "5"));
        int batchSize = Integer.parseInt(take(flags, "--batch-size", "524288"));
        String compression = take(flags, "--compression", "none");
        long transactionSize = Long.parseLong(take(flags, "--transaction-size", "0"));
        if (!flags.isEmpty()) {
            fail("unknown option(s) " + flags.keySet());
        }
        if (topic.isEmpty() || transactionSize <= 0) {
            fail("--topic and a positive --transaction-size are required");
        }

        Properties props = new Properties();
        props.put("bootstrap.servers", bootstrap);
        props.put("acks", acks);
        props.put("enable.idempotence", Boolean.toString(idempotence));
        props.put("linger.ms", Long.toString(lingerMs));
        props.put("batch.size", Integer.toString(batchSize));
        props.put("compression.type", compression);
        props.put("transactional.id", "peer-" + CLIENT + "-" + ProcessHandle.current().pid());
        props.put("key.serializer", ByteArraySerializer.class.getName());
        props.put("value.serializer", ByteArraySerializer.class.getName());

        byte[] value = new byte[size];
        Arrays.fill(value, (byte) 'x');
        long failed = 0;
        double elapsed;
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props)) {
            producer.initTransactions();
            long start = System.nanoTime();
            for (long sent = 0; sent < messages; ) {
                long records = Math.min(transactionSize, messages - sent);
                producer.beginTransaction();
                for (long i = 0; i < records; i++) {
                    producer.send(new ProducerRecord<>(topic, value));
                }
                try {
                    producer.commitTransaction();
                } catch (KafkaException e) {
                    if (failed == 0) {
                        System.err.println(CLIENT + ": commit failed: " + e);
                    }
                    failed += records;
                    producer.abortTransaction();
                }
                sent += records;
            }
            elapsed = (System.nanoTime() - start) / 1e9;
        }
        long delivered = messages - failed;
        System.out.println(String.format(Locale.ROOT,
                "{\"client\":\"%s\",\"workload\":\"produce\",\"messages\":%d,\"size\":%d,"
                        + "\"acks\":\"%s\",\"idempotence\":%b,\"linger_ms\":%d,\"batch_size\":%d,"
                        + "\"compression\":\"%s\",\"transaction_size\":%d,\"failed\":%d,"
                        + "\"elapsed_s\":%.3f,\"msgs_per_s\":%.0f,\"mb_per_s\":%.2f}",
                CLIENT, messages, size, acks, idempotence, lingerMs, batchSize, compression,
                transactionSize, failed, elapsed, delivered / elapsed,
                delivered * (double) size / elapsed / 1e6));
        if (failed > 0) {
            System.err.println(CLIENT + ": " + failed + " of " + messages + " records failed");
            System.exit(1);
        }
    }

    private static String take(Map<String, String> flags, String name, String otherwise) {
        String value = flags.remove(name);
        return value == null ? otherwise : value;
    }

    private static void fail(String why) {
        System.err.println("error: " + why);
        System.exit(2);
    }
}
