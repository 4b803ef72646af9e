// Exits 0 when the broker at argv[2] answers a metadata request, 1 otherwise.
// scripts/infra.sh calls it in a bounded loop to wait for Kafka without fixed sleeps.
import kafkajs from 'kafkajs';

const { Kafka, logLevel } = kafkajs;

const broker = process.argv[2];
const kafka = new Kafka({
  clientId: 'task-cache-probe',
  brokers: [broker],
  logLevel: logLevel.NOTHING,
  connectionTimeout: 1000,
  requestTimeout: 2000,
  retry: { retries: 0 },
});
const admin = kafka.admin();

admin
  .connect()
  .then(() => admin.describeCluster())
  .then((cluster) => (cluster.brokers.length > 0 ? 0 : 1))
  .catch(() => 1)
  .then(async (code) => {
    await admin.disconnect().catch(() => undefined);
    process.exit(code);
  });
