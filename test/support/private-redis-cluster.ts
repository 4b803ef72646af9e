import { ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { RedisConfig } from '../../src/config/app-config.js';
import { PrivateRedisOptions } from './private-redis.js';
import { freePort, sigkill } from './server-process.js';

const run = promisify(execFile);
const NODES = 6;
/** As scripts/infra.sh runs its cluster: a master unreachable this long is failed over. */
export const CLUSTER_NODE_TIMEOUT_MS = 3000;
const READY_TIMEOUT_MS = 60_000;

/** One redis-server of the cluster: its client port, its cluster bus port, its process while it runs. */
interface ClusterNode {
  readonly port: number;
  readonly busPort: number;
  readonly dir: string;
  process?: ChildProcess;
}

/**
 * A Redis Cluster of a suite's own (3 masters, 3 replicas), on free ports, formed with
 * `redis-cli --cluster create` as scripts/infra.sh forms its own: for the projection's integration
 * specs in cluster mode and for tests that kill nodes. The shared cluster is never touched. Only
 * the processes spawned here are ever signalled, by their pids.
 */
export class PrivateRedisCluster {
  private readonly dir: string;

  private constructor(
    private readonly nodes: ClusterNode[],
    private readonly durable: boolean,
    dir: string,
  ) {
    this.dir = dir;
  }

  /** A new, empty cluster, every slot served and every replica in sync. */
  static async start(options: PrivateRedisOptions = {}): Promise<PrivateRedisCluster> {
    const dir = mkdtempSync(join(tmpdir(), 'tc-private-redis-cluster-'));
    const nodes: ClusterNode[] = [];
    const taken = new Set<number>();
    const port = async () => {
      let candidate = await freePort();
      while (taken.has(candidate)) candidate = await freePort();
      taken.add(candidate);
      return candidate;
    };
    for (let index = 0; index < NODES; index += 1) {
      const node = { port: await port(), busPort: await port(), dir: join(dir, String(index)) };
      mkdirSync(node.dir);
      nodes.push(node);
    }
    const cluster = new PrivateRedisCluster(nodes, options.durable ?? false, dir);
    try {
      await cluster.start();
      const addresses = nodes.map((node) => `127.0.0.1:${node.port}`);
      await run('redis-cli', ['--cluster', 'create', ...addresses, '--cluster-replicas', '1', '--cluster-yes']);
      await cluster.untilReady();
    } catch (error) {
      await cluster.destroy();
      throw error;
    }
    return cluster;
  }

  /** The service's Redis settings for this cluster (REDIS_CLUSTER_NODES). */
  get config(): Pick<RedisConfig, 'url' | 'cluster'> {
    return { url: `redis://127.0.0.1:${this.nodes[0].port}`, cluster: { nodes: this.nodes.map(({ port }) => ({ host: '127.0.0.1', port })), tls: false } };
  }

  /** Starts every node that is not running (again, after `kill`: same ports and, if durable, same data) and waits until the cluster is ready. */
  async start(): Promise<void> {
    const persistence = this.durable ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
    for (const node of this.nodes) {
      if (node.process) continue;
      const args = ['--port', String(node.port), '--bind', '127.0.0.1', '--dir', node.dir, '--save', '', ...persistence];
      args.push('--cluster-enabled', 'yes', '--cluster-port', String(node.busPort), '--cluster-config-file', 'nodes.conf');
      args.push('--cluster-node-timeout', String(CLUSTER_NODE_TIMEOUT_MS), '--repl-diskless-sync-delay', '0');
      node.process = spawn('redis-server', args, { stdio: 'ignore' });
    }
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (const node of this.nodes) {
      while (!(await this.answers(node.port))) {
        if (node.process?.exitCode !== null) throw new Error(`redis-server on port ${node.port} exited with ${node.process?.exitCode}`);
        if (Date.now() > deadline) throw new Error(`redis-server on port ${node.port} did not answer within ${READY_TIMEOUT_MS} ms`);
        await sleep(20);
      }
    }
    // A cluster not formed yet (the first start) cannot be ready; the static `start` forms it first.
    if ((await this.clusterInfo(this.nodes[0].port)).cluster_slots_assigned !== '0') await this.untilReady();
  }

  /** Takes every node down abruptly, as a crash of the whole cluster would (SIGKILL). */
  async kill(): Promise<void> {
    await Promise.all(this.nodes.map((node) => this.killNode(node.port)));
  }

  /** Takes one node down abruptly (SIGKILL of its pid); resolves once it has exited. */
  async killNode(port: number): Promise<void> {
    const node = this.nodes.find((candidate) => candidate.port === port);
    const child = node?.process;
    if (node) node.process = undefined;
    await sigkill(child);
  }

  /** Stops it for good and deletes its data; safe to call when it is already down. */
  async destroy(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** The pid of the node on `port`, while it runs. */
  pidOf(port: number): number | undefined {
    return this.nodes.find((node) => node.port === port)?.process?.pid;
  }

  /**
   * The cluster as a running node sees it: each master's port, its slot ranges and its replicas'
   * ports. A node marked failed is left out.
   */
  async masters(): Promise<{ port: number; slots: string[]; replicas: number[] }[]> {
    const alive = this.nodes.find((node) => node.process);
    if (!alive) throw new Error('no node of the private cluster is running');
    const { stdout } = await run('redis-cli', ['-p', String(alive.port), 'cluster', 'nodes']);
    const rows = stdout
      .trim()
      .split('\n')
      .map((line) => line.split(' '));
    const portOf = (address: string) => Number(address.split('@')[0].split(':')[1]);
    return rows
      .filter((row) => row[2].includes('master') && !row[2].includes('fail'))
      .map((row) => ({
        port: portOf(row[1]),
        slots: row.slice(8),
        replicas: rows.filter((replica) => replica[3] === row[0] && !replica[2].includes('fail')).map((replica) => portOf(replica[1])),
      }));
  }

  /** Waits until every running node sees every slot served (cluster_state:ok) and every replica is in sync. */
  async untilReady(): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    let last = '';
    for (;;) {
      last = await this.notReadyBecause().catch((error: Error) => error.message);
      if (last === '') return;
      for (const node of this.nodes) {
        if (node.process && node.process.exitCode !== null) throw new Error(`redis-server on port ${node.port} exited with ${node.process.exitCode}`);
      }
      if (Date.now() > deadline) throw new Error(`private redis cluster not ready within ${READY_TIMEOUT_MS} ms: ${last}`);
      await sleep(50);
    }
  }

  /** Why the cluster is not ready yet, or '' when it is. */
  private async notReadyBecause(): Promise<string> {
    const running = this.nodes.filter((node) => node.process);
    for (const node of running) {
      const info = await this.clusterInfo(node.port);
      if (info.cluster_state !== 'ok') return `node ${node.port}: cluster_state ${info.cluster_state}`;
      const replication = await this.info(node.port, 'replication');
      if (replication.role === 'slave' && replication.master_link_status !== 'up') return `replica ${node.port}: master link ${replication.master_link_status}`;
    }
    return '';
  }

  private async answers(port: number): Promise<boolean> {
    return run('redis-cli', ['-p', String(port), 'ping']).then(
      ({ stdout }) => stdout.trim() === 'PONG',
      () => false,
    );
  }

  private async clusterInfo(port: number): Promise<Record<string, string>> {
    return fields((await run('redis-cli', ['-p', String(port), 'cluster', 'info'])).stdout);
  }

  private async info(port: number, section: string): Promise<Record<string, string>> {
    return fields((await run('redis-cli', ['-p', String(port), 'info', section])).stdout);
  }
}

/** `name:value` lines (INFO, CLUSTER INFO) as a record. */
function fields(text: string): Record<string, string> {
  return Object.fromEntries(
    text
      .split(/\r?\n/)
      .filter((line) => line.includes(':') && !line.startsWith('#'))
      .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1)]),
  );
}
