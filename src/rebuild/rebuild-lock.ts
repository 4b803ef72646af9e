import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { Logger } from '@nestjs/common';
import { LogThrottle } from '../common/log-throttle.js';
import { sleep } from '../common/sleep.js';
import { LockOwner, RebuildPointer } from './rebuild-pointer.js';

/** The lock's TTL: how long a killed rebuild holds it, unless rerun on its own host. */
export const LOCK_TTL_MS = 15_000;
const RENEW_INTERVAL_MS = 2_000;
/** A holder believed dead is taken over once it has missed two renewals. */
const TAKEOVER_BELOW_MS = LOCK_TTL_MS - 2 * RENEW_INTERVAL_MS;
const TAKEOVER_POLL_MS = 250;
/**
 * Writes stop once the lock was last confirmed longer ago than this, well before it can expire
 * and be taken by another process.
 */
const WRITE_LOCK_MAX_AGE_MS = LOCK_TTL_MS / 2;

/** Another process holds the lock. */
export class LockHeldError extends Error {
  constructor(
    readonly owner: LockOwner | undefined,
    readonly expiresInMs: number,
  ) {
    super(
      `another rebuild holds the lock: ${owner ? `${owner.command} by process ${owner.pid} on ${owner.host}, since ${owner.startedAt}` : 'an unknown holder'}; ` +
        `it expires in ${Math.ceil(expiresInMs / 1000)} s unless renewed. Only one rebuild runs at a time: see \`npm run rebuild -- status\`.`,
    );
  }
}

/** Why a held lock ends: lost to another process, or `abort` asked for it. */
export type LockEnd = 'lost' | 'abort-requested';

/**
 * The rebuild lock (fields of the pointer hash, rebuild-pointer.lua): one rebuild at a time, with a
 * TTL that a timer renews every 2 s. A holder killed on this host is taken over at once when the
 * rebuild runs again here; one killed elsewhere holds it until the TTL runs out.
 */
export class RebuildLock {
  private readonly logger = new Logger('RebuildLock');
  readonly token = randomUUID();
  private confirmedAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly failureLog = new LogThrottle(10_000);
  private readonly ended = new AbortController();
  private endReason: LockEnd | undefined;

  constructor(
    private readonly pointer: RebuildPointer,
    private readonly command: string,
  ) {}

  /** Aborts when the lock is lost or `abort` asks for it: whatever the rebuild does stops. */
  get signal(): AbortSignal {
    return this.ended.signal;
  }

  get end(): LockEnd | undefined {
    return this.endReason;
  }

  /** Takes the lock, or throws LockHeldError. */
  async acquire(): Promise<void> {
    const owner: LockOwner = { host: hostname(), pid: process.pid, startedAt: new Date().toISOString(), command: this.command };
    let result = await this.pointer.claim(this.token, owner, LOCK_TTL_MS);
    if (!result.claimed && result.owner && isDeadHereAndNow(result.owner)) {
      // Taken over only from that very holder, and only once it has missed two renewals: a live
      // holder in another PID namespace of a host with the same name keeps renewing, and keeps it.
      const holder = await this.pointer.lockToken();
      this.logger.warn(`the lock's holder, process ${result.owner.pid} on this host, is no longer running: taking the lock over once it has missed two renewals`);
      const deadline = Date.now() + LOCK_TTL_MS;
      while (holder !== undefined && !result.claimed && Date.now() < deadline) {
        result = await this.pointer.claim(this.token, owner, LOCK_TTL_MS, { token: holder, belowMs: TAKEOVER_BELOW_MS });
        if (!result.claimed) await sleep(TAKEOVER_POLL_MS);
      }
    }
    if (!result.claimed) throw new LockHeldError(result.owner, result.expiresInMs);
    this.confirmedAt = Date.now();
    this.timer = setInterval(() => void this.renew(), RENEW_INTERVAL_MS);
  }

  /** True while the lock was confirmed recently enough to write under it. */
  get confirmed(): boolean {
    return !this.ended.signal.aborted && Date.now() - this.confirmedAt <= WRITE_LOCK_MAX_AGE_MS;
  }

  /** Milliseconds since the lock was last confirmed. */
  get sinceConfirmedMs(): number {
    return Date.now() - this.confirmedAt;
  }

  private async renew(): Promise<void> {
    try {
      const result = await this.pointer.renew(this.token, LOCK_TTL_MS);
      if (result.held) {
        this.confirmedAt = Date.now();
        if (result.abortRequested) this.stop('abort-requested', '`rebuild abort` asked this rebuild to stop');
        return;
      }
      this.stop('lost', `the lock was taken by ${result.owner ? `process ${result.owner.pid} on ${result.owner.host} (${result.owner.command})` : 'no one: the pointer lost it (did Redis lose its data?)'}`);
    } catch (error) {
      // Redis unreachable: writes pause once the lock is too old to trust, and resume on renewal.
      if (this.failureLog.take()) this.logger.warn(`cannot renew the rebuild lock (last confirmed ${this.sinceConfirmedMs} ms ago): ${(error as Error).message}`);
    }
  }

  private stop(reason: LockEnd, detail: string): void {
    if (this.ended.signal.aborted) return;
    this.endReason = reason;
    clearInterval(this.timer);
    this.logger.warn(`stopping: ${detail}`);
    this.ended.abort(new Error(detail));
  }

  /** Stops renewing and frees the lock, if still held. */
  async release(): Promise<void> {
    clearInterval(this.timer);
    if (this.endReason === 'lost') return;
    await this.pointer.release(this.token).catch((error: Error) => this.logger.warn(`could not release the rebuild lock (it expires in ${LOCK_TTL_MS / 1000} s): ${error.message}`));
  }
}

/** Whether the holder ran on this host as a process that no longer exists. */
function isDeadHereAndNow(owner: LockOwner): boolean {
  if (owner.host !== hostname() || owner.pid === process.pid) return false;
  try {
    process.kill(owner.pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
