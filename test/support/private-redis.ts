import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A redis-server of a suite's own, on a free port, for tests that take Redis down. The shared
 * one (infra.sh) is never stopped: other suites and other people use it at the same time.
 * Only the process this helper spawned is ever signalled, by its pid.
 */
export class PrivateRedis {
  private process: ChildProcess | undefined;

  private constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** A new server on a free port, answering PING. */
  static async start(): Promise<PrivateRedis> {
    const redis = new PrivateRedis(await freePort());
    await redis.start();
    return redis;
  }

  /** Starts it again after `kill`, on the same port and empty, and waits until it answers PING. */
  async start(): Promise<void> {
    if (this.process) throw new Error('private redis is already running');
    // No persistence: a restart comes back empty, and nothing is written anywhere but a temp dir.
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', tmpdir()];
    const child = spawn('redis-server', args, { stdio: 'ignore' });
    this.process = child;
    const deadline = Date.now() + 10_000;
    while (spawnSync('redis-cli', ['-p', String(this.port), 'ping'], { encoding: 'utf8' }).stdout.trim() !== 'PONG') {
      if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
      if (Date.now() > deadline) throw new Error(`redis-server on port ${this.port} did not answer PING within 10 s`);
      await sleep(50);
    }
  }

  /** Takes it down abruptly, as a crash would (SIGKILL: connections drop, nothing is flushed). */
  async kill(): Promise<void> {
    const child = this.process;
    this.process = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  }

  /** Stops it for good at the end of a suite; safe to call when it is already down. */
  async destroy(): Promise<void> {
    await this.kill();
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  await once(server, 'close');
  if (typeof address !== 'object' || address === null) throw new Error('no port');
  return address.port;
}
