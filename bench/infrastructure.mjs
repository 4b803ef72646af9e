// The local Kafka and Redis every test and benchmark shares: brought up (or reused) by
// scripts/infra.sh, never stopped or flushed here, since others use them at the same time.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './bench-settings.mjs';

const INFRA_TIMEOUT_MS = 300_000;

export function bringUpInfrastructure() {
  execFileSync('bash', [join(ROOT, 'scripts', 'infra.sh'), 'up'], { cwd: ROOT, stdio: 'inherit', timeout: INFRA_TIMEOUT_MS });
  return infrastructureSettings();
}

/** KAFKA_BROKERS and REDIS_URL as scripts/infra.sh wrote them to .local/infra.env. */
export function infrastructureSettings() {
  const text = readFileSync(join(ROOT, '.local', 'infra.env'), 'utf8');
  const env = Object.fromEntries(
    text
      .split('\n')
      .filter((line) => line.includes('='))
      .map((line) => [line.slice(0, line.indexOf('=')).trim(), line.slice(line.indexOf('=') + 1).trim()]),
  );
  if (!env.KAFKA_BROKERS || !env.REDIS_URL) throw new Error('.local/infra.env lacks KAFKA_BROKERS or REDIS_URL');
  const brokers = env.KAFKA_BROKERS.split(',').map((broker) => broker.trim());
  for (const address of [...brokers, new URL(env.REDIS_URL).host]) {
    const host = address.slice(0, address.lastIndexOf(':'));
    if (!['127.0.0.1', 'localhost', '[::1]'].includes(host)) throw new Error(`benchmarks run on loopback only; ${address} is not`);
  }
  return { kafkaBrokers: brokers, kafkaBrokersText: env.KAFKA_BROKERS, redisUrl: env.REDIS_URL };
}
