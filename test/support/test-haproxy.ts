import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually } from './eventually.js';
import { ROOT } from './infra.js';
import { freePort } from './server-process.js';

export interface BalancedServer {
  readonly name: string;
  readonly port: number;
}

/**
 * HAProxy with the project's configuration (deploy/haproxy/haproxy.cfg, as `npm run local
 * --instances` and docker-compose.yml run it) in front of servers on 127.0.0.1, on a free port,
 * with an admin socket of its own to read the servers' states. Only the process spawned here is
 * ever signalled.
 */
export class TestHaproxy {
  readonly output: string[] = [];
  readonly url: string;
  private readonly exited: Promise<unknown>;

  private constructor(
    readonly port: number,
    private readonly dir: string,
    private readonly child: ChildProcess,
  ) {
    this.url = `http://127.0.0.1:${port}`;
    this.exited = once(child, 'exit');
    child.stderr!.on('data', (chunk: Buffer) => this.output.push(...chunk.toString().split('\n').filter(Boolean)));
  }

  /** HAProxy's process id (the benchmarks account its CPU time). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Fails naming how to install it when haproxy is missing. */
  static assertInstalled(): void {
    if (spawnSync('haproxy', ['-v']).error) {
      throw new Error('haproxy is not installed; the load-balancer suite needs HAProxy 2.6 (Debian/Ubuntu: sudo apt-get install -y haproxy)');
    }
  }

  static async start(servers: BalancedServer[]): Promise<TestHaproxy> {
    TestHaproxy.assertInstalled();
    const dir = mkdtempSync(join(tmpdir(), 'tc-haproxy-'));
    const serversFile = join(dir, 'servers.cfg');
    writeFileSync(
      serversFile,
      [
        'global',
        `  stats socket ${join(dir, 'admin.sock')} mode 600 level admin`,
        'backend task_cache',
        ...servers.map(({ name, port }) => `  server ${name} 127.0.0.1:${port}`),
        '',
      ].join('\n'),
    );
    const port = await freePort();
    const child = spawn('haproxy', ['-db', '-f', join(ROOT, 'deploy', 'haproxy', 'haproxy.cfg'), '-f', serversFile], {
      env: { PATH: process.env.PATH ?? '', TC_LB_BIND: `127.0.0.1:${port}` },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const haproxy = new TestHaproxy(port, dir, child);
    await eventually('haproxy to answer on its admin socket', () => haproxy.admin('show info').then((info) => info.includes('Pid:')).catch(() => false), {
      timeoutMs: 10_000,
      intervalMs: 50,
    });
    return haproxy;
  }

  /** Each server's state as HAProxy sees it: UP, DOWN, or a transition ("UP 1/2", "DOWN 1/2"). */
  async serverStates(): Promise<Map<string, string>> {
    const rows = await this.stats();
    return new Map(rows.filter((row) => row.svname !== 'BACKEND' && row.svname !== 'FRONTEND').map((row) => [row.svname, row.status]));
  }

  /** How many requests the backend sent again (retries) and sent again to another server (redispatches). */
  async retries(): Promise<{ retries: number; redispatches: number }> {
    const backend = (await this.stats()).find((row) => row.svname === 'BACKEND');
    return { retries: Number(backend?.wretr ?? NaN), redispatches: Number(backend?.wredis ?? NaN) };
  }

  /** `show stat` of the task_cache proxies, a record per row by column name. */
  private async stats(): Promise<Record<string, string>[]> {
    const [header, ...lines] = (await this.admin('show stat')).trim().split('\n');
    const columns = header.replace(/^# /, '').split(',');
    return lines
      .map((line) => Object.fromEntries(line.split(',').map((value, index) => [columns[index], value])))
      .filter((row) => row.pxname === 'task_cache');
  }

  /** Waits until HAProxy holds `server` to be `state` (UP or DOWN). */
  waitForState(server: string, state: 'UP' | 'DOWN', timeoutMs = 30_000): Promise<true> {
    return eventually(`haproxy to see ${server} ${state}`, async () => (await this.serverStates()).get(server) === state || undefined, {
      timeoutMs,
      intervalMs: 50,
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    await this.exited;
    rmSync(this.dir, { recursive: true, force: true });
  }

  private admin(command: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = connect(join(this.dir, 'admin.sock'));
      let answer = '';
      socket.on('connect', () => socket.end(`${command}\n`));
      socket.on('data', (chunk: Buffer) => (answer += chunk.toString()));
      socket.on('end', () => resolve(answer));
      socket.on('error', reject);
    });
  }
}
