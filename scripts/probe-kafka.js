// Exits 0 when the broker at argv[2] answers a metadata request, of the cluster whose id is argv[3]
// when given (so that another cluster's broker on the port does not count), and its group
// coordinator serves requests (a fresh broker takes a moment to create and load __consumer_offsets);
// 1 otherwise. scripts/infra.sh calls it in a bounded loop to wait for Kafka without fixed sleeps.
import kafkajs from 'kafkajs';

const { Kafka, logLevel } = kafkajs;

const broker = process.argv[2];
const clusterId = process.argv[3];
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
  .then(async (cluster) => {
    if (cluster.brokers.length === 0) return 1;
    if (clusterId && cluster.clusterId !== clusterId) return 1;
    const { groups } = await admin.describeGroups(['task-cache-readiness-probe']);
    return groups.length === 1 && groups[0].errorCode === 0 ? 0 : 1;
  })
  .catch(() => 1)
  .then(async (code) => {
    await admin.disconnect().catch(() => undefined);
    process.exit(code);
  });
