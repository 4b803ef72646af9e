// The service as it runs in production: `node dist/main.js` after `npm run build`, configured only
// through its environment (see src/config/environment.ts), isolated by per-run topic, group and prefix.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './bench-settings.mjs';
import { ManagedProcess, freeLoopbackPort } from './managed-process.mjs';
import { TaskHttpClient } from './task-http-client.mjs';

const BUILD_TIMEOUT_MS = 300_000;
const BOOT_TIMEOUT_MS = 60_000;

export function buildService() {
  if (process.env.BENCH_SKIP_BUILD === '1') {
    console.log('[bench] BENCH_SKIP_BUILD=1: using the existing dist/');
    return;
  }
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'inherit', timeout: BUILD_TIMEOUT_MS });
}

/** Starts the service and resolves once it answers HTTP; its log goes to .local/bench-logs/<run>/. */
export async function startService({ runName, name, infra, topic, dlqTopic, groupId, keyPrefix, token, partitions }) {
  const port = await freeLoopbackPort();
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: 'production',
    PORT: String(port),
    KAFKA_BROKERS: infra.kafkaBrokersText,
    KAFKA_CLIENT_ID: groupId,
    KAFKA_TOPIC: topic,
    KAFKA_DLQ_TOPIC: dlqTopic,
    KAFKA_GROUP_ID: groupId,
    KAFKA_TOPIC_PARTITIONS: String(partitions),
    REDIS_URL: infra.redisUrl,
    REDIS_KEY_PREFIX: keyPrefix,
    AUTH_TOKENS: token,
    LOG_LEVEL: 'warn',
  };
  // BENCH_SERVICE_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=.local/profiles", profiles the service.
  const nodeArgs = (process.env.BENCH_SERVICE_NODE_ARGS ?? '').split(' ').filter((arg) => arg.length > 0);
  const child = ManagedProcess.start({ name, runName, args: [...nodeArgs, join(ROOT, 'dist', 'main.js')], env });
  const client = new TaskHttpClient(`http://127.0.0.1:${port}`, token);
  try {
    await client.waitUntilAnswering({ timeoutMs: BOOT_TIMEOUT_MS, alive: () => child.running, describe: () => child.describeExit() });
  } catch (error) {
    await child.stop();
    throw new Error(`the service did not start: ${error.message}\n--- ${child.logFile} ---\n${child.logTail()}`);
  }
  return { child, client, port, baseUrl: client.baseUrl };
}
