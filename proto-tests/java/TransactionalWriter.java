// Test data for read_committed: writes a fixed, interleaved mix of committed transactions, aborted
// transactions and records outside any transaction into partition 0 of a topic, with the Java
// client, and prints what it wrote.
//
//   java -cp '<kafka>/libs/*' proto-tests/java/TransactionalWriter.java <bootstrap> <topic>
//
// (Java 11+ runs a single source file as it is.) The topic must exist. In log order:
//
//   1. producer P1, transaction committed:  c0 c1 c2 c3 c4     (one batch)
//   2. P1, transaction aborted:             a0 a1 a2 a3 a4     (one batch)
//   3. outside transactions, one batch each: n0 n1 (idempotent producer), n2 n3 (no idempotence)
//   4. P1 and P2, interleaved one record (one batch) at a time; P1 aborts, then P2 commits:
//                                           a5 (P1) c5 (P2) a6 (P1) c6 (P2)
//   5. P1, transaction committed:           c7 c8 c9 c10 c11   (one batch)
//
// Each transaction ends with its marker (a control batch of one record) after its records.
//
// Every record's value is "value-" + its key. Each line on stdout is tab-separated:
//
//   record <committed|aborted|plain> <offset> <key> <value>
//   done
//
// A read_committed consumer sees the committed and plain records, in offset order; a
// read_uncommitted one sees them all. Any failure exits non-zero with the Java stack trace.

import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.Future;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.StringSerializer;

public class TransactionalWriter {
    private final String bootstrap;
    private final String topic;

    private TransactionalWriter(String bootstrap, String topic) {
        this.bootstrap = bootstrap;
        this.topic = topic;
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: TransactionalWriter <bootstrap> <topic>");
            System.exit(2);
        }
        new TransactionalWriter(args[0], args[1]).run();
        System.out.println("done");
        // The producers are closed; nothing else should keep the JVM alive, but make sure.
        System.exit(0);
    }

    /**
     * A producer of string keys and values: transactional when `transactionalId` is set, else
     * idempotent or not (acks=1) as `idempotent` says.
     */
    private KafkaProducer<String, String> producer(String clientId, String transactionalId, boolean idempotent) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.CLIENT_ID_CONFIG, clientId);
        // Records sent together wait for flush() and go out as one batch.
        p.put(ProducerConfig.LINGER_MS_CONFIG, "1000");
        if (transactionalId != null) {
            p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, transactionalId);
        } else if (idempotent) {
            p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        } else {
            p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "false");
            p.put(ProducerConfig.ACKS_CONFIG, "1");
        }
        return new KafkaProducer<>(p);
    }

    /** Sends one record to partition 0 and waits until the broker has written it. */
    private RecordMetadata send(KafkaProducer<String, String> producer, String key) throws Exception {
        Future<RecordMetadata> sent = producer.send(new ProducerRecord<>(topic, 0, key, "value-" + key));
        producer.flush();
        return sent.get();
    }

    private static void print(String status, RecordMetadata md, String key) {
        System.out.println("record\t" + status + "\t" + md.offset() + "\t" + key + "\tvalue-" + key);
    }

    /**
     * One transaction of `keys` by `producer`, written as one batch, then committed or aborted.
     */
    private void transaction(KafkaProducer<String, String> producer, List<String> keys, boolean commit)
            throws Exception {
        producer.beginTransaction();
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        for (String key : keys) sent.add(producer.send(new ProducerRecord<>(topic, 0, key, "value-" + key)));
        producer.flush();
        List<RecordMetadata> written = new ArrayList<>();
        for (Future<RecordMetadata> f : sent) written.add(f.get());
        if (commit) producer.commitTransaction(); else producer.abortTransaction();
        for (int i = 0; i < keys.size(); i++) print(commit ? "committed" : "aborted", written.get(i), keys.get(i));
    }

    private static List<String> keys(String prefix, int from, int to) {
        List<String> keys = new ArrayList<>();
        for (int i = from; i <= to; i++) keys.add(prefix + i);
        return keys;
    }

    private void run() throws Exception {
        // Transactional ids are the topic's own, so runs on other topics never fence each other.
        try (KafkaProducer<String, String> p1 = producer("p1", topic + "-p1", true);
             KafkaProducer<String, String> p2 = producer("p2", topic + "-p2", true)) {
            p1.initTransactions();
            p2.initTransactions();

            transaction(p1, keys("c", 0, 4), true);
            transaction(p1, keys("a", 0, 4), false);

            try (KafkaProducer<String, String> idempotent = producer("idempotent", null, true)) {
                for (String key : keys("n", 0, 1)) print("plain", send(idempotent, key), key);
            }
            try (KafkaProducer<String, String> plain = producer("plain", null, false)) {
                for (String key : keys("n", 2, 3)) print("plain", send(plain, key), key);
            }

            p1.beginTransaction();
            p2.beginTransaction();
            RecordMetadata a5 = send(p1, "a5");
            RecordMetadata c5 = send(p2, "c5");
            RecordMetadata a6 = send(p1, "a6");
            RecordMetadata c6 = send(p2, "c6");
            p1.abortTransaction();
            p2.commitTransaction();
            print("aborted", a5, "a5");
            print("committed", c5, "c5");
            print("aborted", a6, "a6");
            print("committed", c6, "c6");

            transaction(p1, keys("c", 7, 11), true);
        }
    }
}
