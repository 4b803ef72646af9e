import { isValidTaskId } from '../projection/task-id.js';

/**
 * How many channels task changes are published on. Sharded pub/sub delivers a channel's messages
 * within the shard that owns its slot, so the changes are spread over this many channels, and so
 * over the masters of a Redis Cluster, by a hash of the taskId. Every instance subscribes to all of
 * them: one connection per master, whatever the number of watchers.
 */
export const CHANGE_CHANNEL_COUNT = 16;

/** The channel names, `{prefix}changes:0` to `{prefix}changes:15`. */
export function changeChannels(keyPrefix: string): string[] {
  return Array.from({ length: CHANGE_CHANNEL_COUNT }, (_, index) => `${keyPrefix}changes:${index}`);
}

/** The index of the channel a task's changes are published on: FNV-1a of its id. */
export function changeChannelOf(taskId: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < taskId.length; i++) {
    hash ^= taskId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % CHANGE_CHANNEL_COUNT;
}

/** The message: the taskIds that changed, one per line (a taskId holds no whitespace). */
export function encodeChanges(taskIds: readonly string[]): string {
  return taskIds.join('\n');
}

/** The taskIds of a message; anything that is not one (a foreign publisher's bytes) is dropped. */
export function decodeChanges(message: string): string[] {
  return message.split('\n').filter(isValidTaskId);
}

/** `taskIds` grouped by the channel index they are published on. */
export function byChangeChannel(taskIds: Iterable<string>): Map<number, string[]> {
  const groups = new Map<number, string[]>();
  for (const taskId of taskIds) {
    const channel = changeChannelOf(taskId);
    const group = groups.get(channel);
    if (group) group.push(taskId);
    else groups.set(channel, [taskId]);
  }
  return groups;
}
