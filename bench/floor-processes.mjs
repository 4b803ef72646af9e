// Starts the two floors as processes of their own, like the service, so each side of a comparison
// runs in its own process on the same machine.
import { join } from 'node:path';
import { ROOT } from './bench-settings.mjs';
import { ManagedProcess, freeLoopbackPort } from './managed-process.mjs';
import { TaskHttpClient } from './task-http-client.mjs';

const BOOT_TIMEOUT_MS = 30_000;

export async function startFloorReadServer({ runName, redisUrl, keyPrefix, token }) {
  const port = await freeLoopbackPort();
  const env = { PATH: process.env.PATH, FLOOR_PORT: String(port), REDIS_URL: redisUrl, FLOOR_KEY_PREFIX: keyPrefix, FLOOR_TOKEN: token };
  const child = ManagedProcess.start({ name: 'floor-read-server', runName, args: [join(ROOT, 'bench', 'floor-read-server.mjs')], env });
  const client = new TaskHttpClient(`http://127.0.0.1:${port}`, token);
  try {
    await client.waitUntilAnswering({ timeoutMs: BOOT_TIMEOUT_MS, alive: () => child.running, describe: () => child.describeExit() });
  } catch (error) {
    await child.stop();
    throw new Error(`the read floor did not start: ${error.message}\n--- ${child.logFile} ---\n${child.logTail()}`);
  }
  return { child, client, port, baseUrl: client.baseUrl };
}

export function startFloorConsumer({ runName, name, kafkaBrokersText, topic, groupId }) {
  const env = { PATH: process.env.PATH, KAFKA_BROKERS: kafkaBrokersText, FLOOR_TOPIC: topic, FLOOR_GROUP_ID: groupId };
  return ManagedProcess.start({ name, runName, args: [join(ROOT, 'bench', 'floor-consumer.mjs')], env });
}
