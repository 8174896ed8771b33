// A member of a share group on the Java client's KafkaShareConsumer, for the tests that check
// purekafka's share consumer alongside Java's:
//
//   java -cp '<kafka>/libs/*' proto-tests/java/ShareReader.java read <bootstrap> <group> <topic> <idle-ms> <max-poll-records>
//   java -cp '<kafka>/libs/*' proto-tests/java/ShareReader.java hold <bootstrap> <group> <topic>
//
// (Java 11+ runs a single source file as it is.) The group's share.auto.offset.reset is the
// test's to set.
//
// read: explicit acknowledgement; each record is printed, then accepted, and each poll's
// acknowledgements are committed. It stops once no record came for <idle-ms> after the first
// one (or after 120 s in all), closes, and prints "done".
// hold: prints the records of its first non-empty poll and "holding", then waits without
// acknowledging them, to be killed.
//
// Each record is one tab-separated line on stdout:
//
//   record <partition> <offset> <value> <delivery count>
//
// Any failure exits non-zero with the Java stack trace.

import java.time.Duration;
import java.util.List;
import java.util.Properties;

import org.apache.kafka.clients.consumer.AcknowledgeType;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaShareConsumer;
import org.apache.kafka.common.serialization.StringDeserializer;

public class ShareReader {
    public static void main(String[] args) throws Exception {
        if (args.length < 4) {
            System.err.println("usage: ShareReader read|hold <bootstrap> <group> <topic> [<idle-ms> <max-poll-records>]");
            System.exit(2);
        }
        String mode = args[0];
        Properties props = new Properties();
        props.put("bootstrap.servers", args[1]);
        props.put("group.id", args[2]);
        props.put("client.id", "java-share-reader");
        props.put("share.acknowledgement.mode", "explicit");
        if (args.length > 5) {
            props.put("max.poll.records", args[5]);
        }
        try (KafkaShareConsumer<String, String> consumer =
                 new KafkaShareConsumer<>(props, new StringDeserializer(), new StringDeserializer())) {
            consumer.subscribe(List.of(args[3]));
            if (mode.equals("hold")) {
                hold(consumer);
            } else {
                read(consumer, Long.parseLong(args[4]));
            }
        }
        System.out.println("done");
        System.out.flush();
    }

    private static void print(ConsumerRecord<String, String> record) {
        System.out.println("record\t" + record.partition() + "\t" + record.offset() + "\t"
            + record.value() + "\t" + record.deliveryCount().map(String::valueOf).orElse("-"));
    }

    private static void read(KafkaShareConsumer<String, String> consumer, long idleMs) {
        long started = System.currentTimeMillis();
        long last = -1;
        while (System.currentTimeMillis() - started < 120_000) {
            ConsumerRecords<String, String> records = consumer.poll(Duration.ofMillis(200));
            long now = System.currentTimeMillis();
            if (records.isEmpty()) {
                if (last >= 0 && now - last >= idleMs) {
                    return;
                }
                continue;
            }
            last = now;
            for (ConsumerRecord<String, String> record : records) {
                print(record);
                consumer.acknowledge(record, AcknowledgeType.ACCEPT);
            }
            System.out.flush();
            consumer.commitSync();
        }
    }

    private static void hold(KafkaShareConsumer<String, String> consumer) throws InterruptedException {
        while (true) {
            ConsumerRecords<String, String> records = consumer.poll(Duration.ofMillis(200));
            if (!records.isEmpty()) {
                for (ConsumerRecord<String, String> record : records) {
                    print(record);
                }
                System.out.println("holding");
                System.out.flush();
                Thread.sleep(Long.MAX_VALUE);
            }
        }
    }
}
