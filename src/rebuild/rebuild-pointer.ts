import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Injectable } from '@nestjs/common';
import { Result } from 'ioredis';
import { RedisConfig } from '../config/app-config.js';
import { ProjectionKeys } from '../projection/projection-keys.js';
import { RedisConnection } from '../redis/redis-connection.js';
import { RebuildState } from './rebuild-state.js';

declare module 'ioredis' {
  interface RedisCommander<Context> {
    rebuildPointer(key: string, step: string, token: string, ...args: (string | number)[]): Result<unknown, Context>;
  }
}

const POINTER_SCRIPT = readFileSync(join(import.meta.dirname, 'rebuild-pointer.lua'), 'utf8');

/** The pointer hash as a rebuild sees it. */
export interface PointerFields {
  readonly current?: number;
  readonly building?: number;
  readonly previous?: number;
  /** The holder of the lock, while held and not expired. */
  readonly lock?: { readonly owner: LockOwner; readonly expiresInMs: number };
  readonly abortRequested: boolean;
  readonly rebuild?: RebuildState;
}

/** Who holds the lock, as it says of itself. */
export interface LockOwner {
  readonly host: string;
  readonly pid: number;
  readonly startedAt: string;
  readonly command: string;
}

export type ClaimResult = { readonly claimed: true } | { readonly claimed: false; readonly owner: LockOwner | undefined; readonly expiresInMs: number };
export type RenewResult = { readonly held: true; readonly abortRequested: boolean } | { readonly held: false; readonly owner: LockOwner | undefined };

/**
 * The rebuild's side of the generation pointer: every change it makes goes through
 * rebuild-pointer.lua, which checks the lock in the same step.
 */
@Injectable()
export class RebuildPointer {
  readonly keys: ProjectionKeys;

  constructor(
    private readonly redis: RedisConnection,
    config: RedisConfig,
  ) {
    this.keys = new ProjectionKeys(config.keyPrefix);
    redis.client.defineCommand('rebuildPointer', { numberOfKeys: 1, lua: POINTER_SCRIPT });
  }

  private step(step: string, token: string, ...args: (string | number)[]): Promise<unknown> {
    return this.redis.client.rebuildPointer(this.keys.generationPointer, step, token, ...args);
  }

  /**
   * A step that moves the generations: answered only once a replica of the pointer's master has it
   * too (on a cluster), so that a failover cannot take instances back to a generation being
   * deleted. Each such step can be run again.
   */
  private async move(step: string, token: string, ...args: (string | number)[]): Promise<unknown> {
    const reply = await this.step(step, token, ...args);
    await this.redis.replicated();
    return reply;
  }

  /** Takes the lock; `takeover` names a holder believed dead, taken over once it has not renewed for a while. */
  async claim(token: string, owner: LockOwner, ttlMs: number, takeover?: { token: string; belowMs: number }): Promise<ClaimResult> {
    const reply = (await this.step('claim', token, JSON.stringify(owner), ttlMs, ...(takeover ? [takeover.token, takeover.belowMs] : []))) as [number, string?, number?];
    if (reply[0] === 1) return { claimed: true };
    return { claimed: false, owner: ownerOf(reply[1] ?? null), expiresInMs: Number(reply[2] ?? 0) };
  }

  async renew(token: string, ttlMs: number): Promise<RenewResult> {
    const reply = (await this.step('renew', token, ttlMs)) as [number, (number | string)?];
    if (reply[0] === 1) return { held: true, abortRequested: reply[1] === 1 };
    return { held: false, owner: reply[0] === 0 ? ownerOf(String(reply[1])) : undefined };
  }

  /** The lock holder's token, to take over from a holder known to be dead. */
  async lockToken(): Promise<string | undefined> {
    return (await this.redis.client.hget(this.keys.generationPointer, 'lockToken')) ?? undefined;
  }

  async release(token: string): Promise<void> {
    await this.step('release', token);
  }

  async requestAbort(): Promise<void> {
    await this.step('request-abort', '');
  }

  /** The building generation: announced now, or the one a stopped rebuild left. */
  async announce(token: string): Promise<number> {
    return Number(await this.move('announce', token));
  }

  /** Moves reads to `generation`; returns the generation they left and when (Redis's clock, ms). */
  async flip(token: string, generation: number, state: RebuildState): Promise<{ left: number; at: number }> {
    const [left, at] = (await this.move('flip', token, generation, JSON.stringify(state))) as [number, number];
    return { left, at };
  }

  async retire(token: string, generation: number): Promise<void> {
    await this.move('retire', token, generation);
  }

  async drop(token: string, generation: number): Promise<void> {
    await this.move('drop', token, generation);
  }

  async writeState(token: string, state: RebuildState): Promise<void> {
    await this.step('state', token, JSON.stringify(state));
  }

  /** Tells every instance to re-read the pointer now rather than at its next periodic read. */
  async announceChange(): Promise<void> {
    await this.redis.client.publish(this.keys.pointerChannel, 'changed');
  }

  async read(): Promise<PointerFields> {
    const client = this.redis.client;
    const [fields, time] = await Promise.all([client.hgetall(this.keys.generationPointer), client.time()]);
    const now = Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000);
    const expiresAt = Number(fields.lockExpiresAt ?? 0);
    return {
      current: generationOf(fields.current),
      building: generationOf(fields.building),
      previous: generationOf(fields.previous),
      ...(fields.lockToken !== undefined && expiresAt > now && { lock: { owner: ownerOf(fields.lockOwner ?? null)!, expiresInMs: expiresAt - now } }),
      abortRequested: fields.abort === '1',
      ...(fields.rebuild !== undefined && { rebuild: stateOf(fields.rebuild) }),
    };
  }
}

function generationOf(value: string | undefined): number | undefined {
  return value !== undefined && /^[1-9][0-9]{0,8}$/.test(value) ? Number(value) : undefined;
}

function ownerOf(value: string | null): LockOwner | undefined {
  if (!value) return undefined;
  try {
    return JSON.parse(value) as LockOwner;
  } catch {
    return undefined;
  }
}

function stateOf(value: string): RebuildState | undefined {
  try {
    return JSON.parse(value) as RebuildState;
  } catch {
    return undefined;
  }
}
