// Reading tasks over HTTP the way a client does (token header, keep-alive), for correctness and
// freshness: waiting until a server serves every task with the expected bytes, and timing how long
// after an event is produced a GET first returns it. Load generation is autocannon's (read-load.ts).
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Message } from 'kafkajs';
import { sampleTaskBytes, updateNumberOf } from '../test/support/sample-task.js';
import type { TestKafka } from '../test/support/test-kafka.js';
import { CorrectnessFailure } from './bench-run.js';
import { percentile } from './statistics.js';

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
const REQUEST_TIMEOUT_MS = 5000;

export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export class TaskHttpClient {
  /** @param baseUrl e.g. http://127.0.0.1:3000 */
  constructor(
    readonly baseUrl: string,
    private readonly token: string,
  ) {}

  /** GET a path; resolves with the answer or rejects on a network error or timeout. */
  get(path: string, headers: http.OutgoingHttpHeaders = { 'x-authorization': this.token }): Promise<HttpAnswer> {
    return new Promise((resolve, reject) => {
      const request = http.get(new URL(path, this.baseUrl), { agent, headers, timeout: REQUEST_TIMEOUT_MS }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) }));
        response.on('error', reject);
      });
      request.on('timeout', () => request.destroy(new Error(`GET ${path} timed out after ${REQUEST_TIMEOUT_MS} ms`)));
      request.on('error', reject);
    });
  }

  getTask(taskId: string, route = '/tasks/'): Promise<HttpAnswer> {
    return this.get(route + encodeURIComponent(taskId));
  }

  /** Resolves once the server answers any HTTP request; rejects after timeoutMs or when `alive()` turns false. */
  async waitUntilAnswering({ timeoutMs, alive, describe }: { timeoutMs: number; alive: () => boolean; describe: () => string }): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let lastError: Error | undefined;
    while (Date.now() < deadline) {
      if (!alive()) throw new Error(`process stopped before it answered HTTP: ${describe()}`);
      try {
        await this.get('/tasks/bench-readiness-probe');
        return;
      } catch (error) {
        lastError = error as Error;
      }
      await sleep(200);
    }
    throw new Error(`no HTTP answer from ${this.baseUrl} within ${timeoutMs / 1000} s (${lastError?.message ?? 'no attempt'})`);
  }
}

const READABLE_CONCURRENCY = 32;
const READABLE_PASS_PAUSE_MS = 200;

/**
 * Waits until a server serves every expected task (taskId -> bytes) with exactly the expected
 * bytes: the real path's end (Kafka -> ingest -> Redis -> GET). Polls in bounded passes until a
 * deadline, then fails with what the tasks not yet readable answered.
 */
export async function waitUntilReadable({
  client,
  expected,
  timeoutSeconds,
  route = '/tasks/',
  who = 'service',
}: {
  client: TaskHttpClient;
  expected: Map<string, Buffer>;
  timeoutSeconds: number;
  route?: string;
  who?: string;
}): Promise<{ seconds: number; requests: number }> {
  const started = performance.now();
  const deadline = started + timeoutSeconds * 1000;
  const pending = new Set(expected.keys());
  const lastSeen = new Map<string, string>();
  let requests = 0;

  while (pending.size > 0 && performance.now() < deadline) {
    const ids = [...pending];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < ids.length && performance.now() < deadline) {
        const taskId = ids[next++];
        requests++;
        try {
          const { status, body } = await client.getTask(taskId, route);
          if (status === 200 && body.equals(expected.get(taskId)!)) pending.delete(taskId);
          else lastSeen.set(taskId, status === 200 ? 'other bytes' : `HTTP ${status} ${body.toString('utf8', 0, 120)}`);
        } catch (error) {
          lastSeen.set(taskId, (error as Error).message);
        }
      }
    };
    await Promise.all(Array.from({ length: READABLE_CONCURRENCY }, worker));
    if (pending.size > 0) await sleep(READABLE_PASS_PAUSE_MS);
  }

  if (pending.size > 0) {
    const outcomes = new Map<string, { count: number; example: string }>();
    for (const taskId of pending) {
      const seen = lastSeen.get(taskId) ?? 'not requested';
      const kind = seen.startsWith('HTTP') ? seen.slice(0, 8) : seen === 'other bytes' ? 'served other bytes' : 'request failed';
      const entry = outcomes.get(kind) ?? { count: 0, example: `${taskId}: ${seen}` };
      entry.count++;
      outcomes.set(kind, entry);
    }
    const detail = [...outcomes].map(([kind, { count, example }]) => `${count} × ${kind} (e.g. ${example})`).join('; ');
    throw new CorrectnessFailure(
      `${who} did not make ${expected.size} tasks readable within ${timeoutSeconds} s: ` +
        `${expected.size - pending.size} readable with the right bytes, ${pending.size} not: ${detail}`,
    );
  }
  return { seconds: (performance.now() - started) / 1000, requests };
}

const FRESHNESS_TICK_MS = 5;

export interface FreshnessOptions {
  kafka: TestKafka;
  topic: string;
  client: TaskHttpClient;
  route: string;
  taskIds: string[];
  firstUpdate: number;
  rate: number;
  seconds: number;
  sampleEvery: number;
  pollMs: number;
  timeoutMs: number;
}

export interface Freshness {
  produced: number;
  achievedRate: number;
  tracked: number;
  timedOut: number;
  p50Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
  /** The bytes of each task's last produced update. */
  lastBytes: Map<string, Buffer>;
}

/**
 * Freshness: how long after an event is produced a GET first returns it. Events are produced at a
 * steady rate (what is due is sent every few milliseconds); every `sampleEvery`-th event is tracked:
 * its clock starts just before the producer sends it, and it is polled through GET every `pollMs`
 * until the served bytes carry its update number or a later one (per-task order is partition order,
 * so a later update served means this one was applied). Resolution: pollMs plus one GET.
 */
export async function measureFreshness({ kafka, topic, client, route, taskIds, firstUpdate, rate, seconds, sampleEvery, pollMs, timeoutMs }: FreshnessOptions): Promise<Freshness> {
  const total = Math.round(rate * seconds);
  const lastBytes = new Map<string, Buffer>();
  const pollers: Promise<number | null>[] = [];
  const started = performance.now();
  let sent = 0;

  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - started) * rate) / 1000) + 1);
    if (due > sent) {
      const messages: Message[] = [];
      const tracked: { taskId: string; update: number }[] = [];
      for (; sent < due; sent++) {
        const taskId = taskIds[sent % taskIds.length];
        const update = firstUpdate + sent;
        const value = sampleTaskBytes(taskId, update);
        lastBytes.set(taskId, value);
        messages.push({ key: taskId, value });
        if (sent % sampleEvery === 0) tracked.push({ taskId, update });
      }
      const producedAt = performance.now();
      for (const { taskId, update } of tracked) pollers.push(pollUntilServed({ client, route, taskId, update, producedAt, pollMs, timeoutMs }));
      // Awaited before the next send: a task's updates reach Kafka in order.
      await kafka.send(topic, messages);
    }
    await sleep(FRESHNESS_TICK_MS);
  }
  const sendSeconds = (performance.now() - started) / 1000;
  const outcomes = await Promise.all(pollers);
  const timedOut = outcomes.filter((latency) => latency === null).length;
  // A tracked event not served within timeoutMs counts as timeoutMs: a lower bound, flagged by the caller.
  const latencies = outcomes.map((latency) => latency ?? timeoutMs);
  return {
    produced: total,
    achievedRate: total / sendSeconds,
    tracked: outcomes.length,
    timedOut,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    maxMs: percentile(latencies, 100),
    lastBytes,
  };
}

/** Milliseconds from `producedAt` until a GET serves `update` or a later one; null after `timeoutMs`. */
async function pollUntilServed({
  client,
  route,
  taskId,
  update,
  producedAt,
  pollMs,
  timeoutMs,
}: {
  client: TaskHttpClient;
  route: string;
  taskId: string;
  update: number;
  producedAt: number;
  pollMs: number;
  timeoutMs: number;
}): Promise<number | null> {
  for (;;) {
    try {
      const { status, body } = await client.getTask(taskId, route);
      if (status === 200 && updateNumberOf(body) >= update) return performance.now() - producedAt;
    } catch {
      // A failed GET is retried like a stale one, until the timeout.
    }
    if (performance.now() - producedAt > timeoutMs) return null;
    await sleep(pollMs);
  }
}
