import { Injectable, Logger } from '@nestjs/common';
import { LogThrottle } from '../common/log-throttle.js';
import { RetryBackoff } from '../common/retry-backoff.js';
import { sleep } from '../common/sleep.js';
import { KafkaConfig } from '../config/app-config.js';
import { InstanceHeartbeat } from '../projection/instance-heartbeat.js';
import { REBUILD_SETTLE_MS } from '../projection/projection-generations.js';
import { GenerationCleaner } from './generation-cleaner.js';
import { InstanceRegistry } from './instance-registry.js';
import { LOCK_TTL_MS, LockHeldError, RebuildLock } from './rebuild-lock.js';
import { PointerFields, RebuildPointer } from './rebuild-pointer.js';
import { RebuildProgress } from './rebuild-progress.js';
import { RebuildState } from './rebuild-state.js';
import { RebuildTarget } from './rebuild-target.js';
import { megabytes, RedisMemory } from './redis-memory.js';
import { ReplayConsumer, ReplayRange, replayTotal } from './replay-consumer.js';

/** Deletion passes over a generation, each after the last found keys left (writes in flight). */
const DELETE_PASSES = 3;
const SOURCE_CHECK_TIMEOUT_MS = 30_000;
const STATE_WRITE_INTERVAL_MS = 1000;

export interface StartOptions {
  readonly maxEventsPerSecond?: number;
  /** Start even though Redis's maxmemory looks too small for two generations. */
  readonly ignoreMemory: boolean;
  /** Start even though the source topic is empty while the current generation holds tasks. */
  readonly allowEmpty?: boolean;
  /** Flip even though the new generation holds less than half the tasks of the current one. */
  readonly allowShrink?: boolean;
  /** Where a terminal shows progress; undefined: log lines. */
  readonly terminal?: NodeJS.WriteStream;
}

export type StartOutcome =
  | { readonly kind: 'rebuilt'; readonly generation: number; readonly left: number; readonly propagationMs: number; readonly deleted: number }
  | { readonly kind: 'finished-cleanup'; readonly generation: number; readonly left: number; readonly deleted: number };

export type AbortOutcome = { readonly kind: 'aborted'; readonly generation: number; readonly deleted: number } | { readonly kind: 'nothing'; readonly reason: string };

/** The rebuild did not start, and changed nothing: the message says why. */
export class RebuildRefusedError extends Error {}

/** Redis's maxmemory leaves no room for two generations. */
export class InsufficientMemoryError extends RebuildRefusedError {}

/** The new generation looks wrong: the rebuild stopped before its flip, keeping it. */
export class FlipRefusedError extends Error {}

/** `rebuild abort` asked the running rebuild to stop. */
export class StoppedByAbortError extends Error {
  constructor() {
    super('stopped: `rebuild abort` asked for it, and deletes what this rebuild built');
  }
}

/**
 * `npm run rebuild`: a new generation of the projection built from the compacted source topic while
 * reads and live ingest go on, then one atomic flip (README, "Rebuilding the projection").
 *
 *  1. Take the lock (TTL, renewed every 2 s): one rebuild at a time.
 *  2. Announce `building`; wait until every live instance's heartbeat says it writes it too.
 *  3. Take the source topic's offsets, and replay it from the earliest offset up to those high
 *     watermarks into `building`, in a consumer group of its own, through the same ingest path and
 *     Lua script. Everything after the high watermarks reaches `building` through live ingest
 *     (every instance writes it since step 2); "newer wins" makes both converge.
 *  4. Flip: `current` = `building`, atomically, and published; the generation left is still written
 *     (`previous`) until every instance reads the new one, then retired.
 *  5. Delete the generation left with SCAN and UNLINK, delete the replay's group, free the lock.
 *
 * Every step is kept in the pointer hash, so a rebuild that was killed resumes where it stopped
 * when run again: the replay from its group's committed offsets, the cleanup after a flip.
 */
@Injectable()
export class RebuildService {
  private readonly logger = new Logger('Rebuild');

  constructor(
    private readonly pointer: RebuildPointer,
    private readonly registry: InstanceRegistry,
    private readonly cleaner: GenerationCleaner,
    private readonly memory: RedisMemory,
    private readonly replay: ReplayConsumer,
    private readonly target: RebuildTarget,
    private readonly kafka: KafkaConfig,
  ) {}

  async start(options: StartOptions, signal: AbortSignal): Promise<StartOutcome> {
    const lock = new RebuildLock(this.pointer, 'rebuild start');
    await this.acquire(lock);
    const stop = AbortSignal.any([signal, lock.signal]);
    let state: RebuildState | undefined;
    try {
      let fields = await this.pointer.read();
      const pending = pendingDeletion(fields);
      if (pending?.after === 'flip') return await this.finishAfterFlip(lock, fields, pending.generation, stop);
      if (pending?.after === 'abort') {
        await this.finishAbort(lock, fields.rebuild!, stop);
        fields = await this.pointer.read();
      }
      state = await this.announce(lock, fields, options, stop);
      state = await this.replayInto(lock, state, options, stop);
      if (!options.allowShrink) await this.checkSize(state.generation, fields.current, stop);
      return await this.flip(lock, state, stop);
    } catch (error) {
      // Recorded only while its generation is still the building one: not after a flip.
      const fields = state && lock.end !== 'lost' ? await this.pointer.read().catch(() => undefined) : undefined;
      if (state && fields?.building === state.generation) {
        const phase = lock.end === 'abort-requested' ? 'aborting' : 'interrupted';
        const detail = error instanceof Error ? error.message : String(error);
        // The replay records its range and progress as it goes (`state` here is the announced one):
        // kept, so that a rerun resumes that range.
        const recorded = fields.rebuild?.generation === state.generation ? fields.rebuild : undefined;
        await this.pointer.writeState(lock.token, { ...state, ...recorded, phase, updatedAt: Date.now(), error: phase === 'interrupted' ? detail : undefined }).catch(() => undefined);
      }
      throw lock.end === 'abort-requested' ? new StoppedByAbortError() : error;
    } finally {
      await lock.release();
    }
  }

  async abort(signal: AbortSignal): Promise<AbortOutcome> {
    // Nothing is asked of a rebuild that has flipped already (it is deleting the old generation).
    const before = await answered(() => this.pointer.read()).catch((error: Error) => {
      throw new RebuildRefusedError(`cannot read the generation pointer: Redis did not answer (${error.message})`);
    });
    if (before.building === undefined && pendingDeletion(before)?.after !== 'abort') return { kind: 'nothing', reason: this.nothingToAbort(before) };
    const lock = new RebuildLock(this.pointer, 'rebuild abort');
    await this.acquireForAbort(lock, signal);
    const stop = AbortSignal.any([signal, lock.signal]);
    try {
      const fields = await this.pointer.read();
      const generation = fields.building ?? (pendingDeletion(fields)?.after === 'abort' ? fields.rebuild!.generation : undefined);
      if (generation === undefined) return { kind: 'nothing', reason: this.nothingToAbort(fields) };
      const base = fields.rebuild?.generation === generation ? fields.rebuild : undefined;
      const state: RebuildState = { ...(base ?? { generation, group: this.groupOf(generation), startedAt: Date.now() }), phase: 'aborting', updatedAt: Date.now() };
      // Recorded before the drop: an abort stopped after it finishes deleting when run again.
      await this.persist('record the abort', stop, () => this.pointer.writeState(lock.token, state));
      const deleted = await this.finishAbort(lock, state, stop);
      this.logger.log(`aborted the rebuild of generation ${generation}: deleted its ${deleted} keys; generation ${fields.current} stays current`);
      return { kind: 'aborted', generation, deleted };
    } finally {
      await lock.release();
    }
  }

  /** Drops the aborted generation (if still building), and deletes its keys and its group. */
  private async finishAbort(lock: RebuildLock, aborting: RebuildState, stop: AbortSignal): Promise<number> {
    const { generation } = aborting;
    this.logger.log(`deleting generation ${generation}, left by an aborted rebuild`);
    await this.persist(`stop writing generation ${generation}`, stop, () => this.pointer.drop(lock.token, generation));
    await this.pointer.announceChange().catch(() => undefined);
    await this.settle(`stop writing generation ${generation}`, (beat) => !beat.writes.includes(generation), REBUILD_SETTLE_MS.writes, stop);
    const deleted = await this.deleteGeneration(generation, stop);
    await this.replay.deleteGroup(aborting.group);
    await this.persist('record the abort', stop, () => this.pointer.writeState(lock.token, { ...aborting, phase: 'aborted', updatedAt: Date.now() }));
    return deleted;
  }

  private nothingToAbort(fields: PointerFields): string {
    return fields.previous !== undefined
      ? `the rebuild has flipped already (generation ${fields.current} is current); \`npm run rebuild\` finishes deleting generation ${fields.previous}`
      : 'no rebuild is under way';
  }

  /** Announces the building generation (or finds the one a stopped rebuild left), and waits for every instance to write it. */
  private async announce(lock: RebuildLock, fields: PointerFields, options: StartOptions, stop: AbortSignal): Promise<RebuildState> {
    let state: RebuildState;
    if (fields.building !== undefined) {
      const generation = fields.building;
      const earlier = fields.rebuild?.generation === generation ? fields.rebuild : undefined;
      state = { ...(earlier ?? { generation, group: this.groupOf(generation), startedAt: Date.now() }), phase: earlier?.target ? 'replaying' : 'announcing', error: undefined, updatedAt: Date.now() };
      this.logger.log(
        `resuming the rebuild of generation ${generation}${earlier?.replayed !== undefined ? ` (${earlier.replayed} of ${earlier.total} events replayed)` : ''}; generation ${fields.current} is current`,
      );
    } else {
      await this.checkSource(fields, options.allowEmpty ?? false, stop);
      await this.checkMemory(options.ignoreMemory);
      const generation = await this.persist('announce the building generation', stop, () => this.pointer.announce(lock.token));
      state = { generation, phase: 'announcing', group: this.groupOf(generation), startedAt: Date.now(), updatedAt: Date.now() };
      this.logger.log(`rebuilding the projection into generation ${generation}; generation ${fields.current} stays current until the flip`);
    }
    await this.persist('record the rebuild state', stop, () => this.pointer.writeState(lock.token, state));
    await this.pointer.announceChange().catch(() => undefined);
    // Once every running instance says it writes the building generation, and at least 6 s after
    // the announce: whatever an instance writes from then on, it writes on a pointer read after the
    // announce (WRITE_POINTER_MAX_AGE_MS), heartbeat or not.
    const { waitedMs, instances } = await this.settle(`write generation ${state.generation}`, (beat) => beat.writes.includes(state.generation), REBUILD_SETTLE_MS.writes, stop);
    this.logger.log(`${instances} running instance(s) write generation ${state.generation} too (confirmed in ${waitedMs} ms)`);
    return state;
  }

  /** Replays the source topic into the building generation, up to the high watermarks taken once every instance writes it. */
  private async replayInto(lock: RebuildLock, announced: RebuildState, options: StartOptions, stop: AbortSignal): Promise<RebuildState> {
    let state = announced;
    let range: ReplayRange;
    if (state.target && state.start) {
      range = { start: toOffsets(state.start), target: toOffsets(state.target) };
    } else {
      // Taken only now: every event below these offsets is replayed, and every later one reaches
      // the building generation through live ingest, which writes it since every instance confirmed.
      range = await this.replay.range(stop);
      state = { ...state, start: fromOffsets(range.start), target: fromOffsets(range.target), total: replayTotal(range) };
    }
    const total = replayTotal(range);
    state = { ...state, phase: 'replaying', total, updatedAt: Date.now() };
    await this.persist('record the rebuild state', stop, () => this.pointer.writeState(lock.token, state));
    this.logger.log(`replaying ${total} events of ${this.kafka.topic} in consumer group ${state.group}${options.maxEventsPerSecond ? `, at most ${options.maxEventsPerSecond} events/s` : ''}`);

    const progress = new RebuildProgress(state.generation, total, options.terminal);
    const stateWrites = new LogThrottle(STATE_WRITE_INTERVAL_MS);
    this.target.writeTo(state.generation, lock);
    const startedAt = Date.now();
    await this.replay.replay({
      ...range,
      group: state.group,
      maxEventsPerSecond: options.maxEventsPerSecond,
      signal: stop,
      onProgress: (replayed) => {
        const figures = progress.update(replayed);
        state = { ...state, replayed, percent: figures.percent, eventsPerSecond: figures.eventsPerSecond, updatedAt: Date.now() };
        if (stateWrites.take()) void this.pointer.writeState(lock.token, state).catch(() => undefined);
      },
    });
    progress.done();
    const seconds = (Date.now() - startedAt) / 1000;
    this.logger.log(`replayed ${total} events into generation ${state.generation} in ${seconds.toFixed(1)} s`);
    return { ...state, replayed: total, percent: 100, updatedAt: Date.now() };
  }

  private async flip(lock: RebuildLock, replayed: RebuildState, stop: AbortSignal): Promise<StartOutcome> {
    const { generation } = replayed;
    let state: RebuildState = { ...replayed, phase: 'flipped', updatedAt: Date.now() };
    const { left, at } = await this.persist('flip', stop, async () => {
      try {
        return await this.pointer.flip(lock.token, generation, state);
      } catch (error) {
        // A flip whose answer was lost (Redis restarting) shows in the pointer.
        const fields = await this.pointer.read();
        if (fields.current === generation && fields.previous !== undefined) return { left: fields.previous, at: Date.now() };
        throw error;
      }
    });
    const observedFrom = Date.now();
    await this.pointer.announceChange().catch(() => undefined);
    const { instances } = await this.registry.waitUntilAll(`read generation ${generation}`, (beat) => beat.current === generation, stop, this.expect((fields) => fields.current === generation, `generation ${generation} current`));
    const propagationMs = Date.now() - observedFrom;
    this.logger.log(`flipped: reads moved from generation ${left} to ${generation}; all ${instances} running instance(s) read it ${propagationMs} ms after the flip`);
    state = { ...state, flippedAt: at, left, propagationMs, updatedAt: Date.now() };
    await this.persist('record the flip', stop, () => this.pointer.writeState(lock.token, state));
    const deleted = await this.cleanUp(lock, state, left, stop);
    return { kind: 'rebuilt', generation, left, propagationMs, deleted };
  }

  /** A rebuild that was stopped after its flip: what is left is deleting the generation reads left. */
  private async finishAfterFlip(lock: RebuildLock, fields: PointerFields, left: number, stop: AbortSignal): Promise<StartOutcome> {
    const generation = fields.current!;
    this.logger.log(`the last rebuild flipped to generation ${generation} and stopped before deleting generation ${left}: finishing that (run \`npm run rebuild\` again for a new rebuild)`);
    const earlier = fields.rebuild?.generation === generation ? fields.rebuild : undefined;
    const state: RebuildState = { ...(earlier ?? { generation, group: this.groupOf(generation), startedAt: Date.now() }), phase: 'flipped', left, updatedAt: Date.now() };
    const deleted = await this.cleanUp(lock, state, left, stop);
    return { kind: 'finished-cleanup', generation, left, deleted };
  }

  private async cleanUp(lock: RebuildLock, flipped: RebuildState, left: number, stop: AbortSignal): Promise<number> {
    // Recorded before the retire: a rebuild stopped after it still knows what to delete.
    let state: RebuildState = { ...flipped, phase: 'cleaning', left, updatedAt: Date.now() };
    await this.persist('record the rebuild state', stop, () => this.pointer.writeState(lock.token, state));
    await this.persist(`stop writing generation ${left}`, stop, () => this.pointer.retire(lock.token, left));
    await this.pointer.announceChange().catch(() => undefined);
    // Once no instance writes it, and at least 9 s after the retire: no instance reads or writes
    // it from then on, heartbeat or not (READ_POINTER_MAX_AGE_MS).
    await this.settle(`stop writing generation ${left}`, (beat) => !beat.writes.includes(left), REBUILD_SETTLE_MS.reads, stop);
    const deleted = await this.deleteGeneration(left, stop);
    await this.replay.deleteGroup(state.group);
    state = { ...state, phase: 'done', updatedAt: Date.now() };
    await this.persist('record the rebuild state', stop, () => this.pointer.writeState(lock.token, state));
    return deleted;
  }

  /**
   * Deletes a generation no one reads or writes any more: refuses one the pointer still names (a
   * step lost to a failover), and goes over it again while a pass still finds keys (writes that
   * were in flight).
   */
  private async deleteGeneration(generation: number, stop: AbortSignal): Promise<number> {
    const fields = await this.persist('read the generation pointer', stop, () => this.pointer.read());
    if ([fields.current, fields.building, fields.previous].includes(generation)) {
      throw new Error(`generation ${generation} is still named by the pointer (current ${fields.current}, building ${fields.building}, previous ${fields.previous}); not deleting it`);
    }
    const started = Date.now();
    let deleted = 0;
    for (let pass = 1; pass <= DELETE_PASSES; pass += 1) {
      deleted += await this.persist(`delete generation ${generation}`, stop, () => this.cleaner.deleteGeneration(generation, stop));
      const left = await this.persist(`count generation ${generation}`, stop, () => this.cleaner.countGeneration(generation));
      if (left === 0) break;
      this.logger.warn(`${left} keys of generation ${generation} appeared during its deletion; deleting again`);
      await sleep(REBUILD_SETTLE_MS.writes, stop);
    }
    this.logger.log(`deleted generation ${generation}: ${deleted} keys in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return deleted;
  }

  /**
   * Waits until every running instance confirms a pointer change, and at least `settleMs` after it
   * (REBUILD_SETTLE_MS): after that, the change holds for every instance, heartbeat or not.
   */
  private async settle(what: string, confirms: (beat: InstanceHeartbeat) => boolean, settleMs: number, stop: AbortSignal): Promise<{ waitedMs: number; instances: number }> {
    const changedAt = performance.now();
    const confirmed = await this.registry.waitUntilAll(what, confirms, stop);
    const left = settleMs - (performance.now() - changedAt);
    if (left > 0) await sleep(left, stop);
    return confirmed;
  }

  /** A check for a wait: fails it when the pointer no longer shows what the rebuild made it (a step lost to a failover). */
  private expect(holds: (fields: PointerFields) => boolean, what: string): () => Promise<void> {
    return async () => {
      // Redis not answering is not a change: the wait goes on.
      const fields = await this.pointer.read().catch(() => undefined);
      if (fields && !holds(fields)) throw new Error(`the generation pointer no longer has ${what} (current ${fields.current}, building ${fields.building}); was a step lost to a Redis failover? See \`npm run rebuild -- status\``);
    };
  }

  /**
   * Refuses to flip to a generation with less than half the keys of the current one: a wrong but
   * non-empty KAFKA_TOPIC (another environment's, the dead-letter topic) would otherwise replace
   * the projection with a fraction of it, and the old one would be deleted.
   */
  private async checkSize(generation: number, current: number | undefined, stop: AbortSignal): Promise<void> {
    if (current === undefined) return;
    const [built, serving] = await this.persist('count the generations', stop, () => Promise.all([this.cleaner.countGeneration(generation), this.cleaner.countGeneration(current)]));
    this.logger.log(`generation ${generation} holds ${built} keys; generation ${current} holds ${serving}`);
    if (built * 2 >= serving) return;
    throw new FlipRefusedError(
      `generation ${generation} holds ${built} keys, less than half of the ${serving} of generation ${current}: not flipping. Check KAFKA_TOPIC (${this.kafka.topic}); then \`npm run rebuild -- abort\` drops what was built, or \`npm run rebuild -- --allow-shrink\` flips to it`,
    );
  }

  /**
   * Refuses a source that cannot be right: a topic that does not exist, or an empty one while the
   * current generation holds tasks (a wrong KAFKA_TOPIC would otherwise flip reads to nothing).
   */
  private async checkSource(fields: PointerFields, allowEmpty: boolean, stop: AbortSignal): Promise<void> {
    // Kafka unreachable before anything was changed: say so rather than wait for good.
    const checking = AbortSignal.any([stop, AbortSignal.timeout(SOURCE_CHECK_TIMEOUT_MS)]);
    await this.replay.assertTopicExists(checking).catch((error: Error) => {
      if (stop.aborted) throw error;
      throw new RebuildRefusedError(checking.aborted ? `Kafka (${this.kafka.brokers.join(',')}) did not answer within ${SOURCE_CHECK_TIMEOUT_MS / 1000} s` : error.message);
    });
    if (allowEmpty || replayTotal(await this.replay.range(stop)) > 0) return;
    if (fields.current !== undefined && (await this.cleaner.hasKeys(fields.current))) {
      throw new RebuildRefusedError(
        `the source topic ${this.kafka.topic} holds no events while generation ${fields.current} holds tasks: the rebuild would empty the projection. Check KAFKA_TOPIC, or run with --allow-empty`,
      );
    }
  }

  /** Takes the lock; says so when Redis cannot be reached rather than how ioredis refused. */
  private async acquire(lock: RebuildLock): Promise<void> {
    try {
      await answered(() => lock.acquire(), (error) => !(error instanceof LockHeldError));
    } catch (error) {
      if (error instanceof LockHeldError) throw error;
      throw new RebuildRefusedError(`cannot take the rebuild lock: Redis did not answer (${(error as Error).message})`);
    }
  }

  /** Refuses when a master's maxmemory cannot hold two generations; warns when there is no limit. */
  private async checkMemory(ignore: boolean): Promise<void> {
    for (const node of await this.memory.perNode()) {
      const figures = `Redis ${node.node} uses ${megabytes(node.usedBytes)} (${megabytes(node.datasetBytes)} of data); while two generations exist expect about ${megabytes(node.expectedPeakBytes)}`;
      if (node.maxBytes > 0 && node.policy !== 'noeviction') {
        // Under memory pressure Redis would evict tasks (404s after the flip) or tombstone markers.
        const message = `Redis ${node.node} evicts keys when full (maxmemory-policy ${node.policy}): the projection needs maxmemory-policy noeviction`;
        if (!ignore) throw new InsufficientMemoryError(`${message}. Set it, or run with --ignore-memory to start anyway.`);
        this.logger.warn(`${message}; starting anyway (--ignore-memory)`);
      }
      if (node.maxBytes === 0) {
        this.logger.warn(`${figures}; it has no maxmemory limit, so make sure the host has that much memory`);
      } else if (node.expectedPeakBytes > node.maxBytes) {
        const message = `${figures}, above its maxmemory of ${megabytes(node.maxBytes)}: the rebuild could fail writes or evict keys`;
        if (!ignore) throw new InsufficientMemoryError(`${message}. Raise maxmemory, or run with --ignore-memory to start anyway.`);
        this.logger.warn(`${message}; starting anyway (--ignore-memory)`);
      } else {
        this.logger.log(`${figures}, within its maxmemory of ${megabytes(node.maxBytes)}`);
      }
    }
  }

  /**
   * The lock for `abort`: a running rebuild is asked to stop and release it; one that was killed
   * elsewhere holds it until its TTL runs out.
   */
  private async acquireForAbort(lock: RebuildLock, signal: AbortSignal): Promise<void> {
    const deadline = Date.now() + 2 * LOCK_TTL_MS;
    let asked = false;
    for (;;) {
      try {
        await lock.acquire();
        return;
      } catch (error) {
        if (!(error instanceof LockHeldError) || Date.now() > deadline) throw error;
        if (!asked) {
          asked = true;
          await this.pointer.requestAbort();
          this.logger.log(`asked the running rebuild (process ${error.owner?.pid ?? '?'} on ${error.owner?.host ?? '?'}) to stop; waiting for it to release the lock`);
        }
        await sleep(250, signal);
      }
    }
  }

  /** Runs one step on Redis until it succeeds: a Redis outage delays a rebuild, it does not end it. */
  private async persist<T>(what: string, stop: AbortSignal, step: () => Promise<T>): Promise<T> {
    const backoff = new RetryBackoff(200, 5000);
    const failureLog = new LogThrottle(10_000);
    for (;;) {
      stop.throwIfAborted();
      try {
        return await step();
      } catch (error) {
        const message = (error as Error).message ?? String(error);
        if (stop.aborted || /LOCKLOST|NOTBUILDING/.test(message)) throw error;
        if (failureLog.take()) this.logger.warn(`could not ${what}, retrying: ${message}`);
        await sleep(backoff.next(), stop);
      }
    }
  }

  private groupOf(generation: number): string {
    return `${this.kafka.groupId}.rebuild.g${generation}`;
  }
}

/** How long a command waits at its start for Redis to answer (a cluster client still connecting to its nodes). */
const FIRST_ANSWER_WAIT_MS = 5000;

/**
 * Runs `step` until Redis answers it, for up to 5 s: right after start, a cluster client has not
 * connected to every node yet and, with no offline queue, refuses commands for the others.
 */
export async function answered<T>(step: () => Promise<T>, retry: (error: unknown) => boolean = () => true): Promise<T> {
  const deadline = Date.now() + FIRST_ANSWER_WAIT_MS;
  for (;;) {
    try {
      return await step();
    } catch (error) {
      if (!retry(error) || Date.now() > deadline) throw error;
      await sleep(250);
    }
  }
}

/** Instances as `status` shows them. */
export function describeInstance(beat: InstanceHeartbeat): string {
  return `${beat.id}: reads generation ${beat.current}, writes ${beat.writes.join(', ')}`;
}

/**
 * A generation a stopped rebuild or abort left to delete: the one reads left at a flip (still
 * `previous`, or recorded as `left` while cleaning), or an aborted one that is no longer building.
 */
function pendingDeletion(fields: PointerFields): { generation: number; after: 'flip' | 'abort' } | undefined {
  const named = [fields.current, fields.building];
  if (fields.previous !== undefined) return { generation: fields.previous, after: 'flip' };
  const state = fields.rebuild;
  if (state?.phase === 'cleaning' && state.left !== undefined && !named.includes(state.left)) return { generation: state.left, after: 'flip' };
  if (state?.phase === 'aborting' && !named.includes(state.generation)) return { generation: state.generation, after: 'abort' };
  return undefined;
}

function fromOffsets(offsets: ReadonlyMap<number, bigint>): Record<string, string> {
  return Object.fromEntries([...offsets].map(([partition, offset]) => [String(partition), String(offset)]));
}

function toOffsets(offsets: Record<string, string>): Map<number, bigint> {
  return new Map(Object.entries(offsets).map(([partition, offset]) => [Number(partition), BigInt(offset)]));
}
