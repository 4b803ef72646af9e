// The ingest floor: a kafkajs consumer in a group of its own that reads the topic and does nothing
// but resolve and commit offsets (eachBatch, automatic resolve, a commit after every batch: kafkajs
// defaults). bench:ingest measures the service's projection rate against it. It imports nothing of
// the bench or the product, so its process loads only kafkajs.
//
// Settings (environment): KAFKA_BROKERS, FLOOR_TOPIC, FLOOR_GROUP_ID.
// It exits when its stdin closes, so it never outlives the benchmark that started it.
import kafkajs from 'kafkajs';

const { Kafka, logLevel } = kafkajs;
const { KAFKA_BROKERS, FLOOR_TOPIC, FLOOR_GROUP_ID } = process.env;
if (!KAFKA_BROKERS || !FLOOR_TOPIC || !FLOOR_GROUP_ID) {
  process.stderr.write('floor-consumer: KAFKA_BROKERS, FLOOR_TOPIC and FLOOR_GROUP_ID are required\n');
  process.exit(2);
}

const kafka = new Kafka({ clientId: FLOOR_GROUP_ID, brokers: KAFKA_BROKERS.split(','), logLevel: logLevel.WARN });
const consumer = kafka.consumer({ groupId: FLOOR_GROUP_ID });

let stopping = false;
const stop = async (): Promise<void> => {
  if (stopping) return;
  stopping = true;
  await consumer.disconnect().catch(() => undefined);
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.stdin.on('end', () => void stop());
process.stdin.on('close', () => void stop());
process.stdin.resume();

await consumer.connect();
await consumer.subscribe({ topic: FLOOR_TOPIC, fromBeginning: true });
await consumer.run({ eachBatch: async () => {} });
