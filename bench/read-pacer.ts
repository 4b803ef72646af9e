// Open-loop reads at a fixed rate, for bench:rebuild: request i is due at start + i / rate, and is
// sent when due whether or not earlier ones have been answered (keep-alive sockets, as many as it
// takes up to PACER_MAX_SOCKETS per instance). Its latency is taken from when it was due to when
// the whole answer arrived, so a server that stalls is charged for every request that waited, and
// so is this process's own lateness (a timer tick of about 1 ms). Requests go round-robin to the
// instances, for random task ids from PACER_IDS_FILE (a JSON array), with the service's token.
//
// It runs until SIGTERM (or its stdin closes), then waits up to 10 s for the answers in flight and
// writes every request as [dueAtEpochMs, latencyMs, status, instance] to PACER_OUTPUT (status 0: a
// network error or a timeout). Its own process, importing nothing of the bench or the product, so
// the bench's other work (polling offsets, Redis, health) cannot delay its sends or its clock.
//
// Settings (environment): PACER_URLS (comma-separated base URLs), PACER_TOKEN, PACER_RATE,
// PACER_ROUTE (e.g. /api/tasks/), PACER_IDS_FILE, PACER_OUTPUT, PACER_MAX_SOCKETS (256).
import http from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';

const { PACER_URLS, PACER_TOKEN, PACER_RATE, PACER_ROUTE, PACER_IDS_FILE, PACER_OUTPUT } = process.env;
if (!PACER_URLS || !PACER_TOKEN || !PACER_RATE || !PACER_ROUTE || !PACER_IDS_FILE || !PACER_OUTPUT) {
  process.stderr.write('read-pacer: PACER_URLS, PACER_TOKEN, PACER_RATE, PACER_ROUTE, PACER_IDS_FILE and PACER_OUTPUT are required\n');
  process.exit(2);
}
const rate = Number(PACER_RATE);
const maxSockets = Number(process.env.PACER_MAX_SOCKETS ?? 256);
const targets = PACER_URLS.split(',').map((url) => new URL(url));
const taskIds = JSON.parse(readFileSync(PACER_IDS_FILE, 'utf8')) as string[];
const agent = new http.Agent({ keepAlive: true, maxSockets });
const REQUEST_TIMEOUT_MS = 10_000;
const DRAIN_TIMEOUT_MS = 10_000;

/** Flat: due (epoch ms), latency (ms), status, instance index; four numbers per request. */
const samples: number[] = [];
let inFlight = 0;
let stopping = false;
// Epoch milliseconds with sub-millisecond resolution, comparable with the bench's Date.now().
const epochNow = (): number => performance.timeOrigin + performance.now();
const startedAt = epochNow();
let sent = 0;

function fire(dueAt: number, instance: number): void {
  const target = targets[instance];
  const taskId = taskIds[Math.floor(Math.random() * taskIds.length)];
  inFlight++;
  let done = false;
  const finish = (status: number): void => {
    if (done) return;
    done = true;
    inFlight--;
    samples.push(dueAt, epochNow() - dueAt, status, instance);
  };
  const request = http.get(
    { host: target.hostname, port: target.port, path: PACER_ROUTE + encodeURIComponent(taskId), agent, headers: { 'x-authorization': PACER_TOKEN }, timeout: REQUEST_TIMEOUT_MS },
    (response) => {
      response.on('data', () => undefined);
      response.on('end', () => finish(response.statusCode ?? 0));
      response.on('error', () => finish(0));
    },
  );
  request.on('timeout', () => request.destroy(new Error('timeout')));
  request.on('error', () => finish(0));
}

function tick(): void {
  if (stopping) return;
  // Requests 0 .. due-1 are due by now: request i at startedAt + i / rate.
  const due = Math.floor(((epochNow() - startedAt) * rate) / 1000) + 1;
  for (; sent < due; sent++) fire(startedAt + (sent * 1000) / rate, sent % targets.length);
  setTimeout(tick, 1);
}

async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  const deadline = Date.now() + DRAIN_TIMEOUT_MS;
  while (inFlight > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  writeFileSync(PACER_OUTPUT!, JSON.stringify({ rate, targets: targets.map(String), startedAt, sent, unanswered: inFlight, samples }));
  process.exit(0);
}

process.on('SIGTERM', () => void stop());
process.stdin.on('end', () => void stop());
process.stdin.on('close', () => void stop());
process.stdin.resume();
tick();
