// Waits until a server serves every expected task with exactly the expected bytes: the real path's
// end (Kafka -> ingest -> Redis -> GET). Polls in bounded passes until a deadline.
import { setTimeout as sleep } from 'node:timers/promises';
import { CorrectnessFailure } from './correctness-failure.mjs';

const CONCURRENCY = 32;
const PASS_PAUSE_MS = 200;

/**
 * @param {object} options
 * @param {import('./task-http-client.mjs').TaskHttpClient} options.client
 * @param {Map<string, Buffer>} options.expected taskId -> the bytes that must be served
 * @returns {Promise<{ seconds: number, requests: number }>}
 */
export async function waitUntilReadable({ client, expected, timeoutSeconds, route = '/tasks/', who = 'service' }) {
  const started = performance.now();
  const deadline = started + timeoutSeconds * 1000;
  const pending = new Set(expected.keys());
  const lastSeen = new Map();
  let requests = 0;

  while (pending.size > 0 && performance.now() < deadline) {
    const ids = [...pending];
    let next = 0;
    const worker = async () => {
      while (next < ids.length && performance.now() < deadline) {
        const taskId = ids[next++];
        requests++;
        try {
          const { status, body } = await client.getTask(taskId, route);
          if (status === 200 && body.equals(expected.get(taskId))) pending.delete(taskId);
          else lastSeen.set(taskId, status === 200 ? 'other bytes' : `HTTP ${status} ${body.toString('utf8', 0, 120)}`);
        } catch (error) {
          lastSeen.set(taskId, error.message);
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    if (pending.size > 0) await sleep(PASS_PAUSE_MS);
  }

  if (pending.size > 0) {
    const outcomes = new Map();
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
