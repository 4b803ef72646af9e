// Freshness: how long after an event is produced a GET first returns it. Events are produced at a
// steady rate (what is due is sent every few milliseconds); every `sampleEvery`-th event is tracked:
// its clock starts just before the producer sends it, and it is polled through GET every `pollMs`
// until the served bytes carry its update number or a later one (per-task order is partition order,
// so a later update served means this one was applied). Resolution: pollMs plus one GET.
import { setTimeout as sleep } from 'node:timers/promises';
import { seedShapedTaskBytes, updateNumberOf } from './seed-shaped-task.mjs';
import { percentile } from './statistics.mjs';

const TICK_MS = 5;

export async function measureFreshness({ producer, topic, client, route, taskIds, firstUpdate, rate, seconds, sampleEvery, pollMs, timeoutMs }) {
  const total = Math.round(rate * seconds);
  const lastBytes = new Map();
  const pollers = [];
  const started = performance.now();
  let sent = 0;

  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - started) * rate) / 1000) + 1);
    if (due > sent) {
      const messages = [];
      const tracked = [];
      for (; sent < due; sent++) {
        const taskId = taskIds[sent % taskIds.length];
        const update = firstUpdate + sent;
        const value = seedShapedTaskBytes(taskId, update);
        lastBytes.set(taskId, value);
        messages.push({ key: taskId, value });
        if (sent % sampleEvery === 0) tracked.push({ taskId, update });
      }
      const producedAt = performance.now();
      for (const { taskId, update } of tracked) pollers.push(pollUntilServed({ client, route, taskId, update, producedAt, pollMs, timeoutMs }));
      // Awaited before the next send: a task's updates reach Kafka in order.
      await producer.send({ topic, messages, acks: -1 });
    }
    await sleep(TICK_MS);
  }
  const sendSeconds = (performance.now() - started) / 1000;
  const outcomes = await Promise.all(pollers);
  const timedOut = outcomes.filter((latency) => latency === null).length;
  // A tracked event not served within timeoutMs counts as timeoutMs: a lower bound, flagged below.
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

async function pollUntilServed({ client, route, taskId, update, producedAt, pollMs, timeoutMs }) {
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
