// Reads tasks over HTTP the way a client does (token header, keep-alive), for checks and polling.
// Load generation is autocannon's job (http-load.mjs); this client is for correctness and freshness.
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
const REQUEST_TIMEOUT_MS = 5000;

export class TaskHttpClient {
  /** @param {string} baseUrl e.g. http://127.0.0.1:3000 */
  constructor(baseUrl, token) {
    this.baseUrl = baseUrl;
    this.token = token;
  }

  /** GET a path; resolves with { status, body } or rejects on a network error or timeout. */
  get(path, headers = { 'x-authorization': this.token }) {
    return new Promise((resolve, reject) => {
      const request = http.get(new URL(path, this.baseUrl), { agent, headers, timeout: REQUEST_TIMEOUT_MS }, (response) => {
        const chunks = [];
        response.on('data', (chunk) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode, headers: response.headers, body: Buffer.concat(chunks) }));
        response.on('error', reject);
      });
      request.on('timeout', () => request.destroy(new Error(`GET ${path} timed out after ${REQUEST_TIMEOUT_MS} ms`)));
      request.on('error', reject);
    });
  }

  getTask(taskId, route = '/tasks/') {
    return this.get(route + encodeURIComponent(taskId));
  }

  /** Resolves once the server answers any HTTP request; rejects after timeoutMs or when `alive()` turns false. */
  async waitUntilAnswering({ timeoutMs, alive = () => true, describe = () => '' }) {
    const deadline = Date.now() + timeoutMs;
    let lastError;
    while (Date.now() < deadline) {
      if (!alive()) throw new Error(`process stopped before it answered HTTP: ${describe()}`);
      try {
        await this.get('/tasks/bench-readiness-probe');
        return;
      } catch (error) {
        lastError = error;
      }
      await sleep(200);
    }
    throw new Error(`no HTTP answer from ${this.baseUrl} within ${timeoutMs / 1000} s (${lastError?.message ?? 'no attempt'})`);
  }
}

export function closeIdleConnections() {
  agent.destroy();
}
