import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TASK_STATUSES } from '../../src/ingest/dto/task-event.dto.js';
import { ROOT } from './infra.js';

/** The Task JSON of the API page the product answers to (scripts/samples/seed-task.json). */
export const SEED_TASK: Readonly<Record<string, unknown>> = JSON.parse(
  readFileSync(join(ROOT, 'scripts', 'samples', 'seed-task.json'), 'utf8'),
);

/**
 * A task shaped like the seed's (about 1.3 KB as compact JSON), with its own id and an update
 * number that shows up in the bytes, so tests can tell which event a stored value came from.
 */
export function sampleTask(taskId: string, update = 0, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    ...SEED_TASK,
    taskId,
    status: TASK_STATUSES[update % 3],
    pollCount: update,
    updateTime: 1734697335733 + update,
    outputData: { update, note: 'x'.repeat(230) },
    ...overrides,
  };
}

/** The bytes a producer sends for `sampleTask`. */
export function sampleTaskBytes(taskId: string, update = 0, overrides: Record<string, unknown> = {}): Buffer {
  return Buffer.from(JSON.stringify(sampleTask(taskId, update, overrides)));
}

const UPDATE_MARKER = /"pollCount":(\d+)/;

/** The update number that `sampleTaskBytes` wrote into served bytes, or -1 when they carry none. */
export function updateNumberOf(bytes: Buffer): number {
  const match = UPDATE_MARKER.exec(bytes.toString('latin1'));
  return match ? Number(match[1]) : -1;
}
