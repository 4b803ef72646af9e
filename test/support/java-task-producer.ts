import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './infra.js';

export type JavaCompression = 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd';

export interface JavaEvent {
  readonly compression: JavaCompression;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  /** In order; a null value is a header with no value, which kafkajs cannot produce. */
  readonly headers?: readonly { readonly name: string; readonly value: Buffer | null }[];
}

const field = (bytes: Buffer | null) => (bytes === null ? '-' : bytes.toString('base64'));
const headerField = (headers: JavaEvent['headers'] = []) =>
  headers.map(({ name, value }) => (value === null ? field(Buffer.from(name)) : `${field(Buffer.from(name))}:${field(value)}`)).join(',');

/**
 * Produces the events with Kafka's Java client (test/support/JavaTaskProducer.java), using the
 * kafka-clients jar the local broker runs on. Resolves with the count acknowledged per compression.
 */
export async function produceWithJavaClient(brokers: string[], topic: string, events: readonly JavaEvent[]): Promise<Record<string, number>> {
  const dir = mkdtempSync(join(tmpdir(), 'tc-java-'));
  const file = join(dir, 'events.tsv');
  writeFileSync(file, events.map((event) => `${event.compression}\t${field(event.key)}\t${field(event.value)}\t${headerField(event.headers)}`).join('\n'));
  try {
    const classpath = join(ROOT, '.local', 'kafka', 'libs', '*');
    const source = join(ROOT, 'test', 'support', 'JavaTaskProducer.java');
    const child = spawn('java', ['-cp', classpath, source, brokers.join(','), topic, file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    if (code !== 0) throw new Error(`JavaTaskProducer exited with ${code}: ${stderr.slice(-2000)}`);
    return Object.fromEntries(
      stdout
        .trim()
        .split('\n')
        .map((line) => line.split(' '))
        .map(([codec, count]) => [codec, Number(count)]),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
