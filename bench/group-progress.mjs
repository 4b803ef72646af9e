// Watches a consumer group's committed offsets (kafkajs admin fetchOffsets) until it has committed
// the whole topic. The same watcher measures the service and the floor consumer, so both rates come
// from the same observation: events committed between the first and the last commit seen, divided
// by the time between them. A commit is seen at most `intervalMs` late, at both ends alike.
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * @returns {Promise<{ target: number, startedAt: number, firstCommit?: { at: number, events: number }, lastCommit?: { at: number, events: number }, committed: number, caughtUp: boolean }>}
 *   times are performance.now() milliseconds
 */
export async function watchGroupUntilCaughtUp({ admin, groupId, topic, intervalMs, timeoutMs, startedAt = performance.now(), alive = () => true }) {
  const partitions = await admin.fetchTopicOffsets(topic);
  const low = new Map(partitions.map(({ partition, low }) => [partition, Number(low)]));
  const target = partitions.reduce((sum, { high, low }) => sum + Number(high) - Number(low), 0);
  const deadline = startedAt + timeoutMs;
  const progress = { groupId, target, startedAt, firstCommit: undefined, lastCommit: undefined, committed: 0, caughtUp: false };

  while (performance.now() < deadline && alive()) {
    const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
    const at = performance.now();
    const committed = offsets.partitions.reduce((sum, { partition, offset }) => {
      const value = Number(offset);
      return value < 0 ? sum : sum + value - (low.get(partition) ?? 0);
    }, 0);
    if (committed > progress.committed) {
      progress.committed = committed;
      progress.firstCommit ??= { at, events: committed };
      progress.lastCommit = { at, events: committed };
    }
    if (committed >= target) {
      progress.caughtUp = true;
      break;
    }
    await sleep(intervalMs);
  }
  return progress;
}

/** Events per second between the first and the last commit seen; null when they are the same sample. */
export function committedRate(progress) {
  const { firstCommit, lastCommit } = progress;
  if (!firstCommit || !lastCommit || lastCommit.at <= firstCommit.at) return null;
  return ((lastCommit.events - firstCommit.events) * 1000) / (lastCommit.at - firstCommit.at);
}

export function describeProgress(progress) {
  const seconds = (ms) => (ms / 1000).toFixed(2);
  const first = progress.firstCommit ? `first commit after ${seconds(progress.firstCommit.at - progress.startedAt)} s` : 'no commit';
  const last = progress.lastCommit ? `, last after ${seconds(progress.lastCommit.at - progress.startedAt)} s` : '';
  return `${progress.committed}/${progress.target} events committed; ${first}${last}`;
}
