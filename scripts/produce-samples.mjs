// Produces the sample tasks in scripts/samples/*.json to the source topic, keyed by taskId,
// exactly as their files hold them. Usage: node scripts/produce-samples.mjs <brokers> <topic>
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import kafkajs from 'kafkajs';

const [brokers, topic] = process.argv.slice(2);
if (!brokers || !topic) {
  console.error('usage: node scripts/produce-samples.mjs <brokers> <topic>');
  process.exit(2);
}

const dir = join(import.meta.dirname, 'samples');
const messages = readdirSync(dir)
  .filter((name) => name.endsWith('.json'))
  .sort()
  .map((name) => {
    const value = readFileSync(join(dir, name));
    return { key: JSON.parse(value.toString('utf8')).taskId, value };
  });

const kafka = new kafkajs.Kafka({ clientId: 'task-cache-samples', brokers: brokers.split(','), logLevel: kafkajs.logLevel.WARN });
const producer = kafka.producer({ createPartitioner: kafkajs.Partitioners.DefaultPartitioner });
await producer.connect();
try {
  await producer.send({ topic, messages, acks: -1 });
  for (const { key } of messages) console.log(`produced task ${key}`);
} finally {
  await producer.disconnect();
}
