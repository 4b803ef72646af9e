// Watches a consumer group's committed offsets until it has committed the whole topic. The same
// watcher measures the service and the floor consumer, so both rates come from the same
// observation: events committed between the first and the last commit seen, divided by the time
// between them. A commit is seen at most `intervalMs` late, at both ends alike.
import { setTimeout as sleep } from 'node:timers/promises';
import type { TestKafka } from '../test/support/test-kafka.js';

/** A commit seen: when (performance.now() milliseconds) and how many events it covered. */
interface CommitSeen {
  at: number;
  events: number;
}

export interface GroupProgress {
  groupId: string;
  /** The events in the topic when the watch began. */
  target: number;
  startedAt: number;
  firstCommit: CommitSeen | undefined;
  lastCommit: CommitSeen | undefined;
  committed: number;
  caughtUp: boolean;
}

export async function watchGroupUntilCaughtUp({
  kafka,
  groupId,
  topic,
  intervalMs,
  timeoutMs,
  startedAt = performance.now(),
  alive = () => true,
  onCommit = () => undefined,
}: {
  kafka: TestKafka;
  groupId: string;
  topic: string;
  intervalMs: number;
  timeoutMs: number;
  startedAt?: number;
  alive?: () => boolean;
  /** Called each time the group is seen to have committed more, the first commit included. */
  onCommit?: (progress: GroupProgress) => void;
}): Promise<GroupProgress> {
  const partitions = await kafka.admin.fetchTopicOffsets(topic);
  const low = new Map(partitions.map(({ partition, low }) => [partition, Number(low)]));
  const target = partitions.reduce((sum, { high, low }) => sum + Number(high) - Number(low), 0);
  const deadline = startedAt + timeoutMs;
  const progress: GroupProgress = { groupId, target, startedAt, firstCommit: undefined, lastCommit: undefined, committed: 0, caughtUp: false };

  while (performance.now() < deadline && alive()) {
    const offsets = await kafka.committedOffsets(groupId, topic);
    const at = performance.now();
    let committed = 0;
    for (const [partition, offset] of offsets) if (offset >= 0) committed += offset - (low.get(partition) ?? 0);
    if (committed > progress.committed) {
      progress.committed = committed;
      progress.firstCommit ??= { at, events: committed };
      progress.lastCommit = { at, events: committed };
      onCommit(progress);
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
export function committedRate({ firstCommit, lastCommit }: GroupProgress): number | null {
  if (!firstCommit || !lastCommit || lastCommit.at <= firstCommit.at) return null;
  return ((lastCommit.events - firstCommit.events) * 1000) / (lastCommit.at - firstCommit.at);
}

export function describeProgress(progress: GroupProgress): string {
  const seconds = (ms: number): string => (ms / 1000).toFixed(2);
  const first = progress.firstCommit ? `first commit after ${seconds(progress.firstCommit.at - progress.startedAt)} s` : 'no commit';
  const last = progress.lastCommit ? `, last after ${seconds(progress.lastCommit.at - progress.startedAt)} s` : '';
  return `${progress.committed}/${progress.target} events committed; ${first}${last}`;
}
