import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort, sigkill } from './server-process.js';

export interface PrivateRedisOptions {
  /**
   * Keep data across a crash: every write is fsynced to the append-only file before Redis answers,
   * as with a durable production Redis. Ingest suites need that: offsets committed before an
   * outage stay committed, so what Redis acknowledged must still be there when it comes back.
   * Without it, a restart comes back empty.
   */
  durable?: boolean;
}

/**
 * A redis-server of a suite's own, on a free port, for tests that take Redis down. The shared
 * Redis (infra.sh) is never stopped: other suites use it at the same time. Only the process
 * spawned here is ever signalled, by its pid.
 */
export class PrivateRedis {
  readonly url: string;
  private readonly dir: string;
  private process: ChildProcess | undefined;

  private constructor(
    readonly port: number,
    private readonly durable: boolean,
  ) {
    this.url = `redis://127.0.0.1:${port}`;
    this.dir = mkdtempSync(join(tmpdir(), 'tc-private-redis-'));
  }

  /** The service's Redis settings for this server (REDIS_URL). */
  get config(): { url: string } {
    return { url: this.url };
  }

  /** A new, empty server on a free port, answering PING. */
  static async start(options: PrivateRedisOptions = {}): Promise<PrivateRedis> {
    const redis = new PrivateRedis(await freePort(), options.durable ?? false);
    await redis.start();
    return redis;
  }

  /** Starts it (again, after `kill`: same port; same data if durable) and waits until it answers PING. */
  async start(): Promise<void> {
    if (this.process) throw new Error('private redis is already running');
    const persistence = this.durable ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '', ...persistence];
    const child = spawn('redis-server', args, { stdio: 'ignore' });
    this.process = child;
    const deadline = Date.now() + 10_000;
    while (!(await this.answersPing())) {
      if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
      if (Date.now() > deadline) throw new Error(`redis-server on port ${this.port} did not answer PING within 10 s`);
      await sleep(20);
    }
  }

  /** Takes it down abruptly, as a crash would (SIGKILL). */
  async kill(): Promise<void> {
    const child = this.process;
    this.process = undefined;
    await sigkill(child);
  }

  /** Stops it for good and deletes its data; safe to call when it is already down. */
  async destroy(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** One PING over a plain socket (a refused ioredis client would leave a timer behind). */
  answersPing(): Promise<boolean> {
    return new Promise((resolve) => {
      const socket = connect(this.port, '127.0.0.1');
      let reply = '';
      const done = (ok: boolean) => {
        socket.destroy();
        resolve(ok);
      };
      socket.setTimeout(1000, () => done(false));
      socket.once('error', () => done(false));
      socket.once('connect', () => socket.write('PING\r\n'));
      socket.on('data', (chunk: Buffer) => {
        reply += chunk.toString();
        if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
      });
    });
  }
}
