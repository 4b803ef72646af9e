import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.Future;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Produces task events with Kafka's own Java client (kafka-clients), so the e2e tests check that
 * ingest reads what the reference client writes, codec by codec.
 *
 * Run as a single-file source against the broker's jars:
 *   java -cp '.local/kafka/libs/*' test/support/JavaTaskProducer.java BOOTSTRAP TOPIC FILE
 * FILE has one event per line: compression.type TAB key TAB value [TAB headers]. Key and value are
 * base64, or "-" for null; headers are comma-separated base64(name):base64(value), or base64(name)
 * alone for a header with no value (null), which kafkajs cannot produce but this client can.
 * One idempotent producer per compression type; each line's event is sent in file order.
 * Prints "compression.type count" per type once every event is acknowledged.
 */
public class JavaTaskProducer {
  public static void main(String[] args) throws Exception {
    if (args.length != 3) {
      System.err.println("usage: JavaTaskProducer BOOTSTRAP TOPIC FILE");
      System.exit(2);
    }
    Base64.Decoder base64 = Base64.getDecoder();
    Map<String, KafkaProducer<byte[], byte[]>> producers = new LinkedHashMap<>();
    Map<String, Integer> counts = new LinkedHashMap<>();
    List<Future<RecordMetadata>> acks = new ArrayList<>();
    for (String line : Files.readAllLines(Path.of(args[2]))) {
      if (line.isBlank()) continue;
      String[] fields = line.split("\t", -1);
      KafkaProducer<byte[], byte[]> producer = producers.computeIfAbsent(fields[0], codec -> create(args[0], codec));
      RecordHeaders headers = new RecordHeaders();
      if (fields.length > 3 && !fields[3].isEmpty()) {
        for (String header : fields[3].split(",", -1)) {
          String[] parts = header.split(":", 2);
          String name = new String(base64.decode(parts[0]), java.nio.charset.StandardCharsets.UTF_8);
          headers.add(name, parts.length == 2 ? base64.decode(parts[1]) : null);
        }
      }
      acks.add(producer.send(new ProducerRecord<>(args[1], null, bytes(base64, fields[1]), bytes(base64, fields[2]), headers)));
      counts.merge(fields[0], 1, Integer::sum);
    }
    for (Future<RecordMetadata> ack : acks) ack.get();
    for (KafkaProducer<byte[], byte[]> producer : producers.values()) producer.close();
    counts.forEach((codec, count) -> System.out.println(codec + " " + count));
  }

  private static byte[] bytes(Base64.Decoder base64, String field) {
    return field.equals("-") ? null : base64.decode(field);
  }

  private static KafkaProducer<byte[], byte[]> create(String bootstrap, String compression) {
    Properties properties = new Properties();
    properties.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    properties.put(ProducerConfig.CLIENT_ID_CONFIG, "task-cache-test-java-" + compression);
    properties.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, compression);
    properties.put(ProducerConfig.ACKS_CONFIG, "all");
    properties.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
    // A few ms of linger so that several events share a compressed batch.
    properties.put(ProducerConfig.LINGER_MS_CONFIG, "20");
    // Large enough for records near a topic's max.message.bytes; the broker has the last word.
    properties.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, String.valueOf(16 * 1024 * 1024));
    return new KafkaProducer<>(properties, new ByteArraySerializer(), new ByteArraySerializer());
  }
}
