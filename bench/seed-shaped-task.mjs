// Task events shaped like the seed's task (scripts/samples/seed-task.json, about 1.3 KB as compact
// JSON), the same shape as the test suite's sampleTask: each carries its update number, so a reader
// can tell from the bytes which event a served value came from.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './bench-settings.mjs';

const SEED_TASK = JSON.parse(readFileSync(join(ROOT, 'scripts', 'samples', 'seed-task.json'), 'utf8'));
const STATUSES = ['SCHEDULED', 'IN_PROGRESS', 'COMPLETED'];

/** The bytes a producer sends for update `update` of task `taskId`. */
export function seedShapedTaskBytes(taskId, update) {
  return Buffer.from(
    JSON.stringify({
      ...SEED_TASK,
      taskId,
      status: STATUSES[update % STATUSES.length],
      pollCount: update,
      updateTime: 1734697335733 + update,
      outputData: { update, note: 'x'.repeat(230) },
    }),
  );
}

const UPDATE_MARKER = /"pollCount":(\d+)/;

/** The update number carried by served bytes, or -1 when they carry none. */
export function updateNumberOf(bytes) {
  const match = UPDATE_MARKER.exec(bytes.toString('latin1'));
  return match ? Number(match[1]) : -1;
}
