// npm run bench:watch: what 10,000 watches (GET /api/tasks/{id} with `Prefer: wait=60` and
// If-None-Match) held on one instance cost it, and how soon after a change is produced to Kafka the
// held watch is answered.
//
// 1. Loads the tasks through Kafka into one instance (metrics on, WATCH_MAX_HELD above the watchers)
//    and waits until every one is served with the produced bytes. Most tasks are watched by one
//    client each; a few are shared, each watched by many clients.
// 2. Idle, no connections: the service's RSS (VmRSS, median of samples every second) and its CPU
//    (from /proc) over BENCH_IDLE_SECONDS.
// 3. One keep-alive connection per watcher, opened from this process on bare sockets, each reading
//    its task once (the bytes and ETag a client starts from): the same figures with the connections
//    open and idle.
// 4. Every connection sends its watch (If-None-Match: the ETag it read); once taskcache_watches_held
//    says all are held: the same figures again. Per watch: held RSS minus the idle RSS, over the
//    watchers (and minus the idle connections', for what the watch adds to its connection).
// 5. Rounds of waves: each wave produces one update of its tasks to Kafka in one send; the last
//    wave of a round changes the shared tasks. Per watch: from just before the send to the last
//    byte of its 200 read on its connection (and from the send's ack). Every watch must be answered
//    200 with the bytes produced, an ETag other than the one it sent and `Preference-Applied`;
//    none before its change, none lost. The next wave is produced once the last is wholly answered;
//    watches answered are sent again (with the new ETag) after their wave, for the next round.
// BENCH_SMOKE=1: 200 watchers, a few waves; asserts correctness only.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { ROOT } from '../test/support/infra.js';
import { scrape, type Scrape } from '../test/support/metrics-scrape.js';
import { sampleTaskBytes } from '../test/support/sample-task.js';
import { freePort } from '../test/support/server-process.js';
import { assertCorrect, CorrectnessFailure, logger, onCleanup, runBenchmark } from './bench-run.js';
import { startCpuWindow, type CpuShares } from './cpu-accounting.js';
import { openFilesLimit, residentBytes } from './process-memory.js';
import { RawHttpConnection, type RawAnswer } from './raw-http-connection.js';
import { deleteKeysWithPrefix } from './redis-store.js';
import { machineInfo, sectionHead, writeResults } from './results.js';
import { SMOKE, commandLine, runNames, watchSettings } from './settings.js';
import { openBenchStack, startService } from './stack.js';
import { median, percentile, round } from './statistics.js';
import { waitUntilReadable } from './task-reading.js';

const log = logger('watch');
const settings = watchSettings();
const names = runNames('watch');
const token = randomBytes(24).toString('hex');

type Kind = 'single' | 'shared';

interface Watcher {
  readonly taskId: string;
  readonly kind: Kind;
  readonly connection: RawHttpConnection;
  /** The ETag of the copy the watcher has, and its update number. */
  etag: string;
  update: number;
  /** The watch under way: its answer, or the connection's failure, and when it was sent. */
  answer?: Promise<RawAnswer | Error>;
  armedAt: number;
}

interface Sample {
  round: number;
  wave: number;
  kind: Kind;
  /** From just before the wave's send to the watch's answer. */
  ms: number;
  /** From the send's ack to the watch's answer. */
  afterAckMs: number;
}

interface Wave {
  round: number;
  wave: number;
  kind: Kind;
  tasks: number;
  watches: number;
  ackMs: number;
  lastAnswerMs: number;
}

/** The service while nothing happens: RSS and CPU over the idle window. */
interface Idle {
  label: string;
  rssBytes: number | null;
  rssSamples: (number | null)[];
  cpu: CpuShares;
  benchRssBytes: number | null;
  watchesHeld: number;
  /** V8's heap, used and reserved, from the service's own metrics at the end of the window. */
  heapUsedBytes: number;
  heapTotalBytes: number;
}

const mib = (bytes: number | null) => (bytes === null ? null : round(bytes / 2 ** 20, 1));

async function main(): Promise<void> {
  const startedAt = new Date();
  const loadAtStart = round(os.loadavg()[0], 2);
  const hotWatchers = settings.hotTasks * settings.watchersPerHotTask;
  log(
    `${SMOKE ? 'SMOKE run' : 'full run'} ${names.name}: ${settings.watchers} watchers (${settings.singleTasks} tasks watched once, ${settings.hotTasks} × ${settings.watchersPerHotTask}), ` +
      `${settings.rounds} rounds × ${settings.waves} waves, Prefer: wait=${settings.waitSeconds}`,
  );
  const ownLimit = openFilesLimit('self');
  assertCorrect(ownLimit === null || ownLimit > settings.watchers + 200, `this process may open ${ownLimit} files, too few for ${settings.watchers} connections: raise ulimit -n`);

  const { infra, redis, kafka } = await openBenchStack(names.name);
  const groupId = names.groupId('service');
  const keyPrefix = names.keyPrefix('service');
  onCleanup('delete the run topics', () => kafka.deleteTopics([names.topic, names.dlqTopic]));
  onCleanup('delete the service group', () => kafka.deleteGroups([groupId]));
  onCleanup('delete the run keys', () => deleteKeysWithPrefix(redis, keyPrefix));
  await kafka.createTaskTopics(names.topic, names.dlqTopic, settings.partitions, 'compact');

  // 1. The tasks, through Kafka, readable through the service.
  const singleTasks = Array.from({ length: settings.singleTasks }, (_, index) => names.taskId(index));
  const hotTasks = Array.from({ length: settings.hotTasks }, (_, index) => names.taskId(settings.singleTasks + index));
  const expected = new Map([...singleTasks, ...hotTasks].map((taskId) => [taskId, sampleTaskBytes(taskId, 0)]));
  await kafka.sendAll(names.topic, [...expected].map(([key, value]) => ({ key, value })));
  const metricsPort = await freePort();
  const service = await startService({
    runName: names.name,
    name: 'service',
    infra,
    topic: names.topic,
    dlqTopic: names.dlqTopic,
    groupId,
    keyPrefix,
    token,
    partitions: settings.partitions,
    metricsPort,
    environment: { WATCH_MAX_HELD: String(settings.maxHeld) },
  });
  onCleanup('stop the service', () => service.child.stop());
  const servicePid = service.child.pid!;
  const serviceLimit = openFilesLimit(servicePid);
  assertCorrect(serviceLimit === null || serviceLimit > settings.watchers + 200, `the service may open ${serviceLimit} files, too few for ${settings.watchers} watches: raise ulimit -n`);
  await waitUntilReadable({ client: service.client, expected, timeoutSeconds: settings.readableTimeoutSeconds, route: settings.route });
  log(`all ${expected.size} tasks readable through the service (pid ${servicePid}); open files: ${ownLimit ?? '?'} here, ${serviceLimit ?? '?'} for the service`);

  const kafkaPid = Number(readFileSync(join(ROOT, '.local', 'run', 'kafka.pid'), 'utf8').trim());
  const redisPid = Number(/process_id:(\d+)/.exec(await redis.info('server'))?.[1]);
  const cpuGroups = { service: [servicePid], redis: [redisPid], kafka: [kafkaPid] };
  const metrics = (): Promise<Scrape> => scrape(metricsPort);
  const heldNow = async (): Promise<number> => (await metrics()).sum('taskcache_watches_held');
  const observeIdle = async (label: string): Promise<Idle> => {
    const window = startCpuWindow(cpuGroups);
    const rssSamples: (number | null)[] = [];
    const until = performance.now() + settings.idleSeconds * 1000;
    while (performance.now() < until) {
      rssSamples.push(residentBytes(servicePid));
      await sleep(settings.rssSampleMs);
    }
    const cpu = window.stop();
    const scraped = await metrics();
    const idle: Idle = {
      label,
      rssBytes: median(rssSamples),
      rssSamples,
      cpu,
      benchRssBytes: residentBytes('self'),
      watchesHeld: scraped.sum('taskcache_watches_held'),
      heapUsedBytes: scraped.sum('nodejs_heap_size_used_bytes'),
      heapTotalBytes: scraped.sum('nodejs_heap_size_total_bytes'),
    };
    log(`${label}: service RSS ${mib(idle.rssBytes)} MiB (V8 heap ${mib(idle.heapUsedBytes)} MiB used of ${mib(idle.heapTotalBytes)}), service CPU ${cpu.cores.service} cores (redis ${cpu.cores.redis}, kafka ${cpu.cores.kafka}, machine ${cpu.machineCores}), ${idle.watchesHeld} watches held`);
    return idle;
  };
  const untilHeld = async (count: number): Promise<number> => {
    const started = performance.now();
    const deadline = started + settings.heldTimeoutSeconds * 1000;
    let held = -1;
    while (performance.now() < deadline) {
      held = await heldNow();
      if (held === count) return performance.now() - started;
      await sleep(settings.metricsPollMs);
    }
    throw new CorrectnessFailure(`taskcache_watches_held is ${held}, not ${count}, ${settings.heldTimeoutSeconds} s after the watches were sent`);
  };

  // 2. Idle, no connections.
  await sleep(settings.settleMs);
  const idle = await observeIdle('idle, no watches');

  // 3. One connection per watcher, each reading its task once.
  const watchersOf = new Map<string, Watcher[]>();
  const plan: { taskId: string; kind: Kind }[] = [
    ...singleTasks.map((taskId) => ({ taskId, kind: 'single' as const })),
    ...hotTasks.flatMap((taskId) => Array.from({ length: settings.watchersPerHotTask }, () => ({ taskId, kind: 'shared' as const }))),
  ];
  const watchers: Watcher[] = [];
  onCleanup('close the watchers’ connections', () => watchers.forEach((watcher) => watcher.connection.close()));
  const connectStarted = performance.now();
  let next = 0;
  const connectWorker = async (): Promise<void> => {
    while (next < plan.length) {
      const { taskId, kind } = plan[next++];
      const connection = await RawHttpConnection.open(service.port);
      const watcher: Watcher = { taskId, kind, connection, etag: '', update: 0, armedAt: 0 };
      watchers.push(watcher);
      const read = await connection.get(settings.route + taskId, { 'X-Authorization': token });
      assertCorrect(read.status === 200 && read.body.equals(expected.get(taskId)!) && read.headers.etag !== undefined, `${taskId}: the first read answered ${read.status}, not 200 with the produced bytes and an ETag`);
      watcher.etag = read.headers.etag;
      watchersOf.set(taskId, [...(watchersOf.get(taskId) ?? []), watcher]);
    }
  };
  await Promise.all(Array.from({ length: settings.connectConcurrency }, connectWorker));
  log(`${watchers.length} connections open, each read its task once, in ${round((performance.now() - connectStarted) / 1000, 1)} s`);
  const connected = await observeIdle(`${watchers.length} idle keep-alive connections`);

  // 4. Every watcher sends its watch.
  const arm = (watcher: Watcher): void => {
    watcher.armedAt = performance.now();
    watcher.answer = watcher.connection
      .get(settings.route + watcher.taskId, { 'X-Authorization': token, Prefer: `wait=${settings.waitSeconds}`, 'If-None-Match': watcher.etag })
      .catch((error: Error) => error);
  };
  const armStarted = performance.now();
  watchers.forEach(arm);
  const heldAfterMs = await untilHeld(watchers.length);
  log(`${watchers.length} watches held ${round(heldAfterMs / 1000, 1)} s after they were sent`);
  const held = await observeIdle(`${watchers.length} watches held`);

  // 5. Rounds of waves.
  const perWave = Math.ceil(singleTasks.length / (settings.waves - 1));
  const waveTasks = (wave: number): { kind: Kind; taskIds: string[] } =>
    wave === settings.waves - 1 ? { kind: 'shared', taskIds: hotTasks } : { kind: 'single', taskIds: singleTasks.slice(wave * perWave, (wave + 1) * perWave) };
  const samples: Sample[] = [];
  const waves: Wave[] = [];
  const roundCpu: CpuShares[] = [];
  const commandStatsBefore = await spublishStats(redis);
  const scrapeBefore = await metrics();
  /** The longest a watch was held before its answer: it must stay well within the wait. */
  let longestHoldMs = 0;
  for (let r = 0; r < settings.rounds; r++) {
    if (r > 0) await untilHeld(watchers.length);
    const update = r + 1;
    const cpuWindow = startCpuWindow(cpuGroups);
    for (let w = 0; w < settings.waves; w++) {
      const { kind, taskIds } = waveTasks(w);
      const waiting = taskIds.flatMap((taskId) => watchersOf.get(taskId)!);
      const started = performance.now();
      await kafka.send(
        names.topic,
        taskIds.map((taskId) => ({ key: taskId, value: sampleTaskBytes(taskId, update) })),
      );
      const acked = performance.now();
      const answers = await answersWithin(waiting, settings.waveTimeoutMs, `round ${r + 1} wave ${w + 1}`);
      let last = 0;
      waiting.forEach((watcher, index) => {
        const answer = answers[index];
        const what = `round ${r + 1} wave ${w + 1}: the watch of ${watcher.taskId}`;
        if (answer instanceof Error) throw new CorrectnessFailure(`${what} failed: ${answer.message}`);
        assertCorrect(answer.at >= started, `${what} was answered ${answer.status} ${round(started - answer.at, 0)} ms before its change was produced${answer.status === 304 ? ' (its wait ended)' : ''}`);
        assertCorrect(answer.status === 200, `${what} was answered ${answer.status}: ${answer.body.toString('utf8', 0, 200)}`);
        assertCorrect(answer.body.equals(sampleTaskBytes(watcher.taskId, update)), `${what} was answered other bytes than update ${update}`);
        assertCorrect(answer.headers.etag !== undefined && answer.headers.etag !== watcher.etag, `${what} was answered ETag ${answer.headers.etag}, the one it sent being ${watcher.etag}`);
        assertCorrect(answer.headers['preference-applied'] === `wait=${settings.waitSeconds}`, `${what} was answered Preference-Applied: ${answer.headers['preference-applied']}`);
        samples.push({ round: r + 1, wave: w + 1, kind: watcher.kind, ms: answer.at - started, afterAckMs: answer.at - acked });
        last = Math.max(last, answer.at - started);
        longestHoldMs = Math.max(longestHoldMs, answer.at - watcher.armedAt);
        watcher.etag = answer.headers.etag;
        watcher.update = update;
      });
      waves.push({ round: r + 1, wave: w + 1, kind, tasks: taskIds.length, watches: waiting.length, ackMs: round(acked - started, 2), lastAnswerMs: round(last, 2) });
      if (r < settings.rounds - 1) waiting.forEach(arm);
      await sleep(settings.wavePauseMs);
    }
    roundCpu.push(cpuWindow.stop());
    const these = samples.filter((sample) => sample.round === r + 1).map((sample) => sample.ms);
    log(`round ${r + 1}: ${these.length} watches answered 200, p50 ${round(percentile(these, 50), 1)} ms, p99 ${round(percentile(these, 99), 1)} ms, max ${round(percentile(these, 100), 1)} ms; longest hold so far ${round(longestHoldMs / 1000, 1)} s`);
  }
  assertCorrect(longestHoldMs < (settings.waitSeconds - 10) * 1000, `a watch was held ${round(longestHoldMs / 1000, 1)} s before its change, too close to its wait of ${settings.waitSeconds} s`);
  const commandStatsAfter = await spublishStats(redis);
  const scrapeAfter = await metrics();
  const outcomes = Object.fromEntries(['changed', 'unchanged', 'drained', 'abandoned', 'failed', 'refused'].map((outcome) => [outcome, scrapeAfter.sum('taskcache_watches_total', { outcome })]));
  assertCorrect(outcomes.changed === settings.watchers * settings.rounds, `taskcache_watches_total{outcome="changed"} is ${outcomes.changed}, not ${settings.watchers * settings.rounds}`);
  assertCorrect(outcomes.unchanged + outcomes.failed + outcomes.refused + outcomes.abandoned + outcomes.drained === 0, `watches ended otherwise than changed: ${JSON.stringify(outcomes)}`);
  const events = settings.rounds * (singleTasks.length + hotTasks.length);
  const published = scrapeAfter.sum('taskcache_task_changes_published_total') - scrapeBefore.sum('taskcache_task_changes_published_total');
  const received = scrapeAfter.sum('taskcache_task_changes_received_total') - scrapeBefore.sum('taskcache_task_changes_received_total');
  assertCorrect(published === events && received === events, `${events} events produced, ${published} taskIds announced, ${received} received`);
  const spublish = { calls: commandStatsAfter.calls - commandStatsBefore.calls, usec: commandStatsAfter.usec - commandStatsBefore.usec };

  // Every watch answered: the connections close, and the memory left is read once more.
  watchers.forEach((watcher) => watcher.connection.close());
  await untilHeld(0);
  await sleep(settings.settleMs);
  const released = await observeIdle('connections closed');

  const latency = (kind?: Kind) => {
    const values = samples.filter((sample) => kind === undefined || sample.kind === kind);
    const ms = values.map((sample) => sample.ms);
    const afterAck = values.map((sample) => sample.afterAckMs);
    return {
      count: ms.length,
      p50Ms: round(percentile(ms, 50), 2),
      p90Ms: round(percentile(ms, 90), 2),
      p99Ms: round(percentile(ms, 99), 2),
      maxMs: round(percentile(ms, 100), 2),
      afterAck: { p50Ms: round(percentile(afterAck, 50), 2), p99Ms: round(percentile(afterAck, 99), 2), maxMs: round(percentile(afterAck, 100), 2) },
    };
  };
  const perWatch = (from: Idle, to: Idle) => (from.rssBytes === null || to.rssBytes === null ? null : round((to.rssBytes - from.rssBytes) / settings.watchers, 0));
  const memory = {
    idleMiB: mib(idle.rssBytes),
    connectionsMiB: mib(connected.rssBytes),
    heldMiB: mib(held.rssBytes),
    releasedMiB: mib(released.rssBytes),
    perWatchBytes: perWatch(idle, held),
    perConnectionBytes: perWatch(idle, connected),
    perWatchOverConnectionBytes: perWatch(connected, held),
    heapUsedMiB: [idle, connected, held, released].map((entry) => mib(entry.heapUsedBytes)),
    heapPerWatchBytes: round((held.heapUsedBytes - idle.heapUsedBytes) / settings.watchers, 0),
  };
  const summary = { memory, latency: { all: latency(), single: latency('single'), shared: latency('shared') } };
  log(`RSS: idle ${memory.idleMiB} MiB, ${settings.watchers} connections ${memory.connectionsMiB} MiB, ${settings.watchers} watches held ${memory.heldMiB} MiB (${memory.perWatchBytes} B per watch)`);
  log(`event to answer: p50 ${summary.latency.all.p50Ms} ms, p99 ${summary.latency.all.p99Ms} ms, max ${summary.latency.all.maxMs} ms over ${summary.latency.all.count} watches`);

  const machine = await machineInfo(redis);
  const command = commandLine('bench:watch');
  const date = startedAt.toISOString();
  const loadAverage1m = round(os.loadavg()[0], 2);
  const figures = {
    benchmark: 'watch',
    smoke: SMOKE,
    date,
    command,
    machine,
    settings,
    openFiles: { bench: ownLimit, service: serviceLimit },
    loadAverage1m: { start: loadAtStart, end: loadAverage1m },
    connectSeconds: round((armStarted - connectStarted) / 1000, 2),
    heldAfterMs: round(heldAfterMs, 0),
    longestHoldMs: round(longestHoldMs, 0),
    summary,
    idle: [idle, connected, held, released],
    roundCpu,
    spublish: { ...spublish, perEvent: round(spublish.calls / events, 3), usecPerCall: round(spublish.usec / Math.max(1, spublish.calls), 2) },
    changes: { events, published, received },
    outcomes,
    waves,
  };
  const cores = (shares: CpuShares, group: string) => shares.cores[group] ?? 'n/a';
  const idleRow = (entry: Idle) =>
    `| ${entry.label} | ${entry.watchesHeld} | ${mib(entry.rssBytes)} | ${mib(entry.heapUsedBytes)} / ${mib(entry.heapTotalBytes)} | ${cores(entry.cpu, 'service')} | ${cores(entry.cpu, 'redis')} | ${cores(entry.cpu, 'kafka')} | ${entry.cpu.machineCores ?? 'n/a'} |`;
  const latencyRow = (label: string, figures: ReturnType<typeof latency>) =>
    `| ${label} | ${figures.count} | ${figures.p50Ms} | ${figures.p90Ms} | ${figures.p99Ms} | ${figures.maxMs} | ${figures.afterAck.p50Ms} | ${figures.afterAck.p99Ms} |`;
  const section = [
    ...sectionHead('Watch: 10,000 held watches on one instance', { date, command, machine }),
    `- ${settings.watchers} watchers, one keep-alive connection each from the bench process (bare sockets): ${settings.singleTasks} tasks watched by one client each, ${settings.hotTasks} shared tasks watched by ${settings.watchersPerHotTask} clients each; \`GET ${settings.route}{id}\` with \`Prefer: wait=${settings.waitSeconds}\` and the ETag read just before as If-None-Match; one instance, metrics on, WATCH_MAX_HELD=${settings.maxHeld}; open files ${ownLimit ?? '?'} (bench) and ${serviceLimit ?? '?'} (service).`,
    `- 1-minute load average ${loadAtStart} at the start and ${loadAverage1m} at the end, on ${machine.cores} cores: the machine is shared and noisy (other work beside the run), so the latency tail is the machine's as much as the service's; the bench process holding the clients shares those cores too ("bench" below).`,
    '',
    `Service RSS (VmRSS, median of a sample every ${settings.rssSampleMs} ms) and cores busy (CPU seconds per second, from /proc) over ${settings.idleSeconds} s with nothing happening:`,
    '',
    '| state | watches held | service RSS (MiB) | V8 heap used / total (MiB) | service cores | redis cores | kafka cores | machine cores |',
    '|---|---|---|---|---|---|---|---|',
    ...[idle, connected, held, released].map(idleRow),
    '',
    `Per watch: **${memory.perWatchBytes} bytes** of RSS over the idle service (its connection included); ${memory.perConnectionBytes} bytes for an idle keep-alive connection that has read once, ${memory.perWatchOverConnectionBytes} bytes more for the watch held on it (V8 heap used, read from the service's own metrics and counting garbage not yet collected: ${memory.heapPerWatchBytes} bytes per watch over the idle service). RSS is what the process has taken from the system: it is not given back when the connections close (last row), V8 keeping the heap it grew to, so these are the growth of a process that held no watches before. The watches were all held ${round(heldAfterMs / 1000, 1)} s after they were sent; the longest any was held before its change was ${round(longestHoldMs / 1000, 1)} s, within its wait.`,
    '',
    `Event to answer: ${settings.rounds} rounds × ${settings.waves} waves; each wave is one Kafka send (acks=all) of one update to each of its tasks (${perWave} tasks watched once, or in the last wave of a round the ${settings.hotTasks} shared tasks), the next sent ${settings.wavePauseMs} ms after the last is wholly answered. From just before the send to the last byte of the watch's 200 on its connection; "after ack" from the send's acknowledgement. Every watch was answered 200 with the produced bytes, a new ETag and \`Preference-Applied: wait=${settings.waitSeconds}\`, none before its change, none lost.`,
    '',
    '| watches | count | p50 ms | p90 ms | p99 ms | max ms | after ack p50 ms | after ack p99 ms |',
    '|---|---|---|---|---|---|---|---|',
    latencyRow('all', summary.latency.all),
    latencyRow('one client per task', summary.latency.single),
    latencyRow(`shared (${settings.watchersPerHotTask} clients per task)`, summary.latency.shared),
    '',
    `Cores busy during the waves: ${roundCpu.map((cpu, index) => `round ${index + 1}: service ${cores(cpu, 'service')}, redis ${cores(cpu, 'redis')}, kafka ${cores(cpu, 'kafka')}, bench ${cpu.cores['bench (autocannon)'] ?? 'n/a'}, machine ${cpu.machineCores ?? 'n/a'}`).join('; ')}.`,
    `Change announcements: ${events} events produced, ${published} taskIds announced with ${spublish.calls} SPUBLISH calls (${figures.spublish.perEvent} per event; ${figures.spublish.usecPerCall} µs of Redis per call, INFO commandstats).`,
    `Figures per wave and per idle sample: \`bench/results/watch.json\`.`,
  ].join('\n');
  const written = writeResults('watch', figures, section);
  log(`results: ${written.json}, ${written.summary}`);
}

/** The answers of `waiting`'s watches, in order; fails when they are not all in within `timeoutMs`. */
async function answersWithin(waiting: Watcher[], timeoutMs: number, what: string): Promise<(RawAnswer | Error)[]> {
  let answered = 0;
  const all = Promise.all(waiting.map((watcher) => watcher.answer!.then((answer) => ((answered += 1), answer))));
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), timeoutMs)));
  const answers = await Promise.race([all, timedOut]);
  clearTimeout(timer);
  if (answers === undefined) throw new CorrectnessFailure(`${what}: ${waiting.length - answered} of ${waiting.length} watches not answered within ${timeoutMs / 1000} s of the change`);
  return answers;
}

/** SPUBLISH calls and microseconds Redis has spent on them, from INFO commandstats. */
async function spublishStats(redis: Redis): Promise<{ calls: number; usec: number }> {
  const line = /^cmdstat_spublish:calls=(\d+),usec=(\d+)/m.exec(await redis.info('commandstats'));
  return { calls: Number(line?.[1] ?? 0), usec: Number(line?.[2] ?? 0) };
}

await runBenchmark('watch', main);
