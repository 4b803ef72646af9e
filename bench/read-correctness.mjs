// Before any load: both sides serve exactly the produced bytes on both routes, and both turn away a
// request without the token. Otherwise the comparison would be between different work.
import { assertCorrect } from './correctness-failure.mjs';

/**
 * @param {object} options
 * @param {{ service: import('./task-http-client.mjs').TaskHttpClient, floor: import('./task-http-client.mjs').TaskHttpClient }} options.clients
 * @param {Map<string, Buffer>} options.expected
 * @param {string[]} options.taskIds the tasks to check
 */
export async function checkBothSidesServeTheSameBytes({ clients, expected, taskIds }) {
  for (const [side, client] of Object.entries(clients)) {
    for (const taskId of taskIds) {
      for (const route of ['/tasks/', '/api/tasks/']) {
        const { status, headers, body } = await client.getTask(taskId, route);
        assertCorrect(status === 200, `${side}: GET ${route}${taskId} answered ${status}, not 200`);
        assertCorrect(body.equals(expected.get(taskId)), `${side}: GET ${route}${taskId} served other bytes than were produced`);
        assertCorrect(/^application\/json\b/.test(headers['content-type'] ?? ''), `${side}: GET ${route}${taskId} has Content-Type ${headers['content-type']}`);
      }
    }
    const missing = await client.getTask('bench-no-such-task');
    assertCorrect(missing.status === 404, `${side}: an unknown task answered ${missing.status}, not 404`);
    const anonymous = await client.get(`/tasks/${taskIds[0]}`, {});
    assertCorrect(anonymous.status === 401, `${side}: a request without a token answered ${anonymous.status}, not 401`);
  }
}

/** A load run is correct when every request was answered 200 (all ids exist, the token is valid). */
export function loadRunProblems(side, run) {
  const problems = [];
  if (run.non2xx > 0) problems.push(`${run.non2xx} non-2xx answers (${JSON.stringify(run.statusCodes)})`);
  if (run.errors > 0) problems.push(`${run.errors} connection errors`);
  if (run.timeouts > 0) problems.push(`${run.timeouts} timeouts`);
  if (run.ok === 0) problems.push('no answer at all');
  return problems.length === 0 ? null : `${side}: ${problems.join(', ')}`;
}
