// The machine a run was measured on: results are only comparable on the same one.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { ROOT } from './bench-settings.mjs';

function kafkaVersion() {
  const pom = readFileSync(join(ROOT, 'scripts', 'kafka', 'pom.xml'), 'utf8');
  return /<kafka\.version>([^<]+)<\/kafka\.version>/.exec(pom)?.[1] ?? 'unknown';
}

export async function machineInfo(redis) {
  const info = await redis.info('server');
  return {
    cores: os.availableParallelism?.() ?? os.cpus().length,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    kafka: kafkaVersion(),
    redis: /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown',
  };
}
