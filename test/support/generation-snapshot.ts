import { Cluster, Redis } from 'ioredis';
import { ProjectionKeys } from '../../src/projection/projection-keys.js';

/** One task's hash as Redis holds it: v (bytes, absent on a tombstone marker), p, o, t. */
export type StoredHash = Readonly<Record<string, string>>;

const SCAN_COUNT = 1000;

/** The masters to SCAN: the one Redis, or every master of a cluster. */
function masters(client: Redis | Cluster): Redis[] {
  return client instanceof Cluster ? client.nodes('master') : [client];
}

/** The keys of one generation under `prefix`, found by SCAN as the product's cleaner finds them. */
export async function generationKeys(client: Redis | Cluster, prefix: string, generation: number): Promise<string[]> {
  const pattern = new ProjectionKeys(prefix).generationPattern(generation);
  const keys: string[] = [];
  for (const node of masters(client)) {
    let cursor = '0';
    // Bounded: SCAN's cursor comes back to 0 after one pass over the keyspace.
    do {
      const [next, found] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT);
      cursor = next;
      keys.push(...found);
    } while (cursor !== '0');
  }
  return keys;
}

/**
 * Every task hash of one generation, by task id, its fields as text (v as base64, so that bytes
 * compare exactly). Read in chunks of single-key commands (they may span cluster slots).
 */
export async function generationSnapshot(client: Redis | Cluster, prefix: string, generation: number): Promise<Map<string, StoredHash>> {
  const taskPrefix = new ProjectionKeys(prefix).taskPrefix(generation);
  const keys = [...new Set(await generationKeys(client, prefix, generation))];
  const snapshot = new Map<string, StoredHash>();
  for (let start = 0; start < keys.length; start += 500) {
    const chunk = keys.slice(start, start + 500);
    const hashes = await Promise.all(chunk.map((key) => client.hgetallBuffer(key)));
    chunk.forEach((key, index) => {
      const fields = Object.fromEntries(
        Object.entries(hashes[index])
          .map(([field, value]) => [field, field === 'v' ? value.toString('base64') : value.toString('utf8')] as const)
          .sort(([a], [b]) => a.localeCompare(b)),
      );
      // A key that expired between SCAN and HGETALL (a tombstone marker) reads as empty: skipped.
      if (Object.keys(fields).length > 0) snapshot.set(key.slice(taskPrefix.length), fields);
    });
  }
  return snapshot;
}

export interface SnapshotDifference {
  readonly onlyInActual: string[];
  readonly onlyInExpected: string[];
  /** Tasks whose hashes differ, with the fields that differ (v shown as the update it carries). */
  readonly different: { taskId: string; fields: string[] }[];
}

/** How `actual` differs from `expected`, key for key and field for field. */
export function compareSnapshots(actual: ReadonlyMap<string, StoredHash>, expected: ReadonlyMap<string, StoredHash>): SnapshotDifference {
  const onlyInActual = [...actual.keys()].filter((taskId) => !expected.has(taskId)).sort();
  const onlyInExpected = [...expected.keys()].filter((taskId) => !actual.has(taskId)).sort();
  const different: SnapshotDifference['different'] = [];
  for (const [taskId, hash] of actual) {
    const other = expected.get(taskId);
    if (!other) continue;
    const fields = [...new Set([...Object.keys(hash), ...Object.keys(other)])].filter((field) => hash[field] !== other[field]).sort();
    if (fields.length > 0) different.push({ taskId, fields: fields.map((field) => `${field}: ${describe(field, hash[field])} vs ${describe(field, other[field])}`) });
  }
  return { onlyInActual, onlyInExpected, different };
}

function describe(field: string, value: string | undefined): string {
  if (value === undefined) return 'absent';
  if (field !== 'v') return value;
  const match = /"pollCount":(\d+)/.exec(Buffer.from(value, 'base64').toString('latin1'));
  return match ? `update ${match[1]}` : `${value.length} base64 chars`;
}
