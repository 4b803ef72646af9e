import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ROOT } from './infra.js';
import { freePort, sigkill } from './server-process.js';

const LIBS = join(ROOT, '.local', 'kafka', 'libs');
/** Small: one suite's topics. The shared broker (infra.sh) gets 512 MiB. */
const HEAP = ['-Xms64m', '-Xmx256m'];
/** A cold JVM on a busy 2-core machine, with log recovery after a SIGKILL. */
const READY_TIMEOUT_MS = 120_000;

/** Runs a node script to its end; resolves with its exit code. */
async function exitCodeOf(args: string[]): Promise<number | null> {
  const child = spawn(process.execPath, args, { stdio: 'ignore' });
  const [code] = (await once(child, 'exit')) as [number | null];
  return code;
}

/**
 * A single-node KRaft broker of a suite's own, on free ports, for tests that take Kafka down. The
 * shared broker (infra.sh) is never stopped: other suites use it at the same time. It runs from the
 * jars infra.sh assembles (the e2e global setup runs `infra.sh up`), with the same
 * server.properties template and log4j2 configuration, and keeps its data and logs in a temporary
 * directory. Only the process spawned here is ever signalled, by its pid.
 */
export class PrivateKafka {
  readonly broker: string;
  private readonly dir: string;
  private readonly properties: string;
  private process: ChildProcess | undefined;

  private constructor(
    readonly port: number,
    readonly controllerPort: number,
  ) {
    this.broker = `127.0.0.1:${port}`;
    this.dir = mkdtempSync(join(tmpdir(), 'tc-private-kafka-'));
    this.properties = join(this.dir, 'server.properties');
  }

  /** A new, empty broker on free ports, ready to serve a consumer group. */
  static async start(): Promise<PrivateKafka> {
    if (!existsSync(LIBS)) throw new Error(`no Kafka jars in ${LIBS}: run scripts/infra.sh up first`);
    const port = await freePort();
    let controllerPort = await freePort();
    while (controllerPort === port) controllerPort = await freePort();
    const kafka = new PrivateKafka(port, controllerPort);
    try {
      await kafka.format();
      await kafka.start();
    } catch (error) {
      await kafka.destroy();
      throw error;
    }
    return kafka;
  }

  get brokers(): string[] {
    return [this.broker];
  }

  /** Where the broker logs (kafka.log) and prints (kafka.out). */
  get logDir(): string {
    return join(this.dir, 'logs');
  }

  /**
   * Starts it (again, after `kill`: same ports, same data) and waits until it answers a metadata
   * request and its group coordinator serves requests, as infra.sh does (scripts/probe-kafka.js).
   */
  async start(): Promise<void> {
    if (this.process) throw new Error('private kafka is already running');
    const out = openSync(join(this.logDir, 'kafka.out'), 'a');
    const child = spawn('java', [...this.javaOptions(), 'kafka.Kafka', this.properties], { stdio: ['ignore', out, out] });
    closeSync(out);
    this.process = child;
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while ((await exitCodeOf([join(ROOT, 'scripts', 'probe-kafka.js'), this.broker])) !== 0) {
      if (child.exitCode !== null) throw new Error(`kafka exited with ${child.exitCode}; see ${this.logDir}/kafka.log`);
      if (Date.now() > deadline) throw new Error(`kafka on ${this.broker} was not ready within ${READY_TIMEOUT_MS} ms; see ${this.logDir}/kafka.log`);
      await sleep(100);
    }
  }

  /** Takes it down abruptly, as a crash would (SIGKILL). */
  async kill(): Promise<void> {
    const child = this.process;
    this.process = undefined;
    await sigkill(child);
  }

  /** Stops it for good and deletes its data and logs; safe to call when it is already down. */
  async destroy(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Writes server.properties from infra.sh's template and formats the storage of a new cluster. */
  private async format(): Promise<void> {
    const data = join(this.dir, 'data');
    mkdirSync(data);
    mkdirSync(this.logDir);
    const template = readFileSync(join(ROOT, 'scripts', 'kafka', 'server.properties.template'), 'utf8');
    writeFileSync(
      this.properties,
      template.replaceAll('@KAFKA_PORT@', String(this.port)).replaceAll('@CONTROLLER_PORT@', String(this.controllerPort)).replaceAll('@DATA_DIR@', data),
    );
    // A cluster id is 16 random bytes in URL-safe base64, as StorageTool's random-uuid prints it,
    // and like Kafka's own never starting with '-', which the command line would take for an option.
    let clusterId = randomBytes(16).toString('base64url');
    while (clusterId.startsWith('-')) clusterId = randomBytes(16).toString('base64url');
    const child = spawn('java', [...this.javaOptions(), 'kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', this.properties], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    if (code !== 0) throw new Error(`formatting the private Kafka's storage failed (${code}): ${stderr.trim()}`);
  }

  private javaOptions(): string[] {
    return [
      ...HEAP,
      '-XX:+UseG1GC',
      '-XX:MaxGCPauseMillis=20',
      '-Djava.awt.headless=true',
      `-Dkafka.logs.dir=${this.logDir}`,
      `-Dlog4j2.configurationFile=${join(ROOT, 'scripts', 'kafka', 'log4j2.properties')}`,
      '-cp',
      `${LIBS}/*`,
    ];
  }
}
