import { jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { hostname } from 'node:os';
import { ProjectionUnavailableError } from '../projection/projection-unavailable.error.js';
import { LockHeldError, RebuildLock } from './rebuild-lock.js';
import { ClaimResult, LockOwner, RebuildPointer, RenewResult } from './rebuild-pointer.js';
import { RebuildTarget } from './rebuild-target.js';

/** The pointer's lock steps, answering as a test says. */
class FakePointer {
  claims: { token: string; takeover?: { token: string; belowMs: number } }[] = [];
  holder: { token: string; owner: LockOwner } | undefined;
  renewal: () => Promise<RenewResult> = async () => ({ held: true, abortRequested: false });
  released: string[] = [];

  /** Claims with a takeover that this many more attempts refuse (the holder's last renewal is recent). */
  renewedRecently = 0;
  claim = async (token: string, owner: LockOwner, _ttl: number, takeover?: { token: string; belowMs: number }): Promise<ClaimResult> => {
    this.claims.push({ token, takeover });
    const takenOver = takeover?.token === this.holder?.token && this.renewedRecently-- <= 0;
    if (this.holder && !takenOver) return { claimed: false, owner: this.holder.owner, expiresInMs: 12_000 };
    this.holder = { token, owner };
    return { claimed: true };
  };
  lockToken = async () => this.holder?.token;
  renew = () => this.renewal();
  release = async (token: string) => void this.released.push(token);
}

describe('RebuildLock', () => {
  let pointer: FakePointer;
  let lock: RebuildLock;
  const elapse = (ms: number) => jest.advanceTimersByTimeAsync(ms);

  beforeAll(() => Logger.overrideLogger(false));

  beforeEach(() => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    pointer = new FakePointer();
    lock = new RebuildLock(pointer as unknown as RebuildPointer, 'rebuild start');
  });

  afterEach(async () => {
    await lock.release();
    jest.useRealTimers();
  });

  it('refuses when a live process holds it, naming that process', async () => {
    pointer.holder = { token: 'other', owner: { host: 'elsewhere', pid: 1, startedAt: '2026-11-30T04:00:00.000Z', command: 'rebuild start' } };
    const refused = lock.acquire();
    await expect(refused).rejects.toThrow(LockHeldError);
    await expect(refused).rejects.toThrow(/rebuild start by process 1 on elsewhere, since 2026-11-30T04:00:00.000Z.*expires in 12 s/);
  });

  it('takes it over from a holder that ran on this host and is no longer running, once it has missed its renewals', async () => {
    const dead = { host: hostname(), pid: 2 ** 22 + 12345, startedAt: '', command: 'rebuild start' };
    pointer.holder = { token: 'dead', owner: dead };
    pointer.renewedRecently = 3;
    const acquired = lock.acquire();
    await elapse(1000);
    await acquired;
    expect(pointer.claims.slice(1).map((claim) => claim.takeover)).toEqual(Array(4).fill({ token: 'dead', belowMs: 11_000 }));
    expect(lock.confirmed).toBe(true);
  });

  it('does not take it over from a live process on this host', async () => {
    pointer.holder = { token: 'alive', owner: { host: hostname(), pid: process.ppid, startedAt: '', command: 'rebuild start' } };
    await expect(lock.acquire()).rejects.toThrow(LockHeldError);
  });

  it('stops confirming writes once renewals fail for half its TTL, and confirms them again on the next renewal', async () => {
    const target = new RebuildTarget();
    await lock.acquire();
    target.writeTo(4, lock);
    expect(target.writeGenerations()).toEqual([4]);
    pointer.renewal = async () => {
      throw new Error('Connection is closed.');
    };
    await elapse(7000);
    expect(target.writeGenerations()).toEqual([4]);
    await elapse(1000);
    expect(() => target.writeGenerations()).toThrow(ProjectionUnavailableError);
    pointer.renewal = async () => ({ held: true, abortRequested: false });
    await elapse(2000);
    expect(target.writeGenerations()).toEqual([4]);
    expect(lock.signal.aborted).toBe(false);
  });

  it('ends when abort asks for it, and when another process has it', async () => {
    await lock.acquire();
    pointer.renewal = async () => ({ held: true, abortRequested: true });
    await elapse(2000);
    expect(lock.signal.aborted).toBe(true);
    expect(lock.end).toBe('abort-requested');
    expect(lock.confirmed).toBe(false);

    const second = new RebuildLock(pointer as unknown as RebuildPointer, 'rebuild start');
    pointer.holder = undefined;
    await second.acquire();
    pointer.renewal = async () => ({ held: false, owner: { host: 'h', pid: 9, startedAt: '', command: 'rebuild abort' } });
    await elapse(2000);
    expect(second.end).toBe('lost');
    await second.release();
    // A lost lock is not released: it is someone else's.
    expect(pointer.released).not.toContain(second.token);
  });
});
