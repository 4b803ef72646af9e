import { ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConductorClient } from './conductor-client.js';
import { ROOT } from './infra.js';
import { PrivateRedis } from './private-redis.js';
import { freePort } from './server-process.js';

const SCRIPTS = join(ROOT, 'scripts', 'conductor');

/** The Conductor OSS version the tests run: scripts/conductor/pom.xml's conductor.version, the one place it is stated. */
export const CONDUCTOR_VERSION = /<conductor\.version>([^<]+)<\/conductor\.version>/.exec(readFileSync(join(SCRIPTS, 'pom.xml'), 'utf8'))?.[1] ?? 'unknown';

/**
 * A bounded heap (Conductor's default takes a quarter of the machine), and C1 only: the server is
 * up in about 18 s rather than 25 s here, and a test's few hundred requests never need C2's code.
 */
const JVM_OPTIONS = ['-Xms128m', '-Xmx512m', '-XX:TieredStopAtLevel=1', '-Djava.awt.headless=true'];
/** What a started context logs when it failed; the JVM then stays up with its port closed. */
const FAILED_TO_START = /Application run failed|APPLICATION FAILED TO START/;
const PORT_TAKEN = /Port \d+ was already in use/;
/** Tries on another free port when the one chosen was taken before the server bound it. */
const START_ATTEMPTS = 3;

export interface TestConductorOptions {
  /** Where the webhooks go: Conductor POSTs task notifications to `${webhookUrl}/${taskEndpoint}`, workflow ones to `${webhookUrl}/${workflowEndpoint}`. */
  webhookUrl: string;
  /** The one header Conductor sends with every notification (header-prefer), e.g. X-Webhook-Token. */
  webhookHeader: string;
  /** Its value (header-prefer-value). */
  webhookToken: string;
  /** Path segment of task notifications; default "task". */
  taskEndpoint?: string;
  /** Path segment of workflow notifications; default "workflow". */
  workflowEndpoint?: string;
  /**
   * How long Conductor waits for the receiver's answer before it gives up on that request (and
   * sends it again, up to 3 times in all); default 5000. Conductor's own default is 300 ms.
   */
  readTimeoutMs?: number;
  /** More Spring properties, given on the command line (they win over the template's). */
  properties?: Record<string, string | number | boolean>;
  /** How long the server may take to answer its API; default 180 s (about 18–30 s on a 2-core machine). */
  readyTimeoutMs?: number;
  /** The log file's name under .local/logs (truncated at start); default "conductor". */
  logName?: string;
}

/** Runs scripts/conductor/fetch.sh (Maven, cached in ~/.m2) and resolves with the jar's path. */
export async function fetchConductorJar(): Promise<string> {
  const child = spawn('bash', [join(SCRIPTS, 'fetch.sh')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`scripts/conductor/fetch.sh failed (${code}): ${stderr.trim()}`);
  return stdout.trim().split('\n').at(-1)!;
}

/** A value for a .properties line: one line, backslashes escaped. */
function propertyValue(name: string, value: string): string {
  if (/[\r\n]/.test(value)) throw new Error(`${name} must be one line`);
  return value.replaceAll('\\', '\\\\');
}

/**
 * A stock Conductor OSS server (conductor-server's boot jar, CONDUCTOR_VERSION) of a suite's own:
 * fetched if need be, on a free port, with its persistence and queues on a redis-server of its own
 * (never the machine's 6379), and its task and workflow webhooks (task_publisher,
 * workflow_publisher) pointed at `webhookUrl`. Properties: scripts/conductor/conductor.properties.template.
 * Its output goes to .local/logs/<logName>.log. Only the processes started here are ever signalled.
 */
export class TestConductor {
  readonly url: string;
  readonly api: ConductorClient;
  private readonly exited: Promise<unknown>;
  private readyAfterMs = NaN;

  private constructor(
    readonly port: number,
    readonly redis: PrivateRedis,
    readonly logFile: string,
    private readonly child: ChildProcess,
    private readonly dir: string,
  ) {
    this.url = `http://127.0.0.1:${port}`;
    this.api = new ConductorClient(this.url);
    this.exited = once(child, 'exit');
  }

  /** From spawning the JVM to its API's first answer, in ms. */
  get startupMs(): number {
    return this.readyAfterMs;
  }

  /** The JVM's process id. */
  get pid(): number | undefined {
    return this.child.pid;
  }

  static async start(options: TestConductorOptions): Promise<TestConductor> {
    const jar = await fetchConductorJar();
    const redis = await PrivateRedis.start();
    const dir = mkdtempSync(join(tmpdir(), 'tc-conductor-'));
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          return await TestConductor.launch(jar, redis, dir, options);
        } catch (error) {
          if (!(error instanceof PortTakenError) || attempt >= START_ATTEMPTS) throw error;
        }
      }
    } catch (error) {
      await redis.destroy();
      rmSync(dir, { recursive: true, force: true });
      throw error;
    }
  }

  private static async launch(jar: string, redis: PrivateRedis, dir: string, options: TestConductorOptions): Promise<TestConductor> {
    const port = await freePort();
    const properties = join(dir, 'conductor.properties');
    const values: Record<string, string> = {
      SERVER_PORT: String(port),
      REDIS_HOST: '127.0.0.1',
      REDIS_PORT: String(redis.port),
      WEBHOOK_URL: propertyValue('webhookUrl', options.webhookUrl.replace(/\/+$/, '')),
      TASK_ENDPOINT: propertyValue('taskEndpoint', options.taskEndpoint ?? 'task'),
      WORKFLOW_ENDPOINT: propertyValue('workflowEndpoint', options.workflowEndpoint ?? 'workflow'),
      WEBHOOK_HEADER: propertyValue('webhookHeader', options.webhookHeader),
      WEBHOOK_TOKEN: propertyValue('webhookToken', options.webhookToken),
      READ_TIMEOUT_MS: String(options.readTimeoutMs ?? 5000),
    };
    let text = readFileSync(join(SCRIPTS, 'conductor.properties.template'), 'utf8');
    for (const [name, value] of Object.entries(values)) text = text.replaceAll(`@${name}@`, value);
    const unfilled = /@[A-Z_]+@/.exec(text);
    if (unfilled) throw new Error(`conductor.properties.template has ${unfilled[0]}, which TestConductor does not fill in`);
    writeFileSync(properties, text);

    const logs = join(ROOT, '.local', 'logs');
    mkdirSync(logs, { recursive: true });
    const logFile = join(logs, `${options.logName ?? 'conductor'}.log`);
    const out = openSync(logFile, 'w');
    const extra = Object.entries(options.properties ?? {}).map(([name, value]) => `--${name}=${value}`);
    const started = Date.now();
    // Only what the JVM needs from the environment: Spring binds environment variables to
    // properties (SERVER_PORT would move the server), so none of the test run's own may leak in.
    const env: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? dir };
    if (process.env.JAVA_HOME) env.JAVA_HOME = process.env.JAVA_HOME;
    const child = spawn('java', [...JVM_OPTIONS, '-jar', jar, `--spring.config.additional-location=file:${properties}`, ...extra], {
      cwd: dir,
      env,
      stdio: ['ignore', out, out],
    });
    closeSync(out);
    const conductor = new TestConductor(port, redis, logFile, child, dir);
    const deadline = started + (options.readyTimeoutMs ?? 180_000);
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`Conductor exited (${child.exitCode ?? child.signalCode}) before its API answered; see ${logFile}\n${conductor.failure()}`);
      }
      const log = conductor.log();
      if (FAILED_TO_START.test(log)) {
        await conductor.stopJvm();
        const message = `Conductor failed to start; see ${logFile}\n${conductor.failure()}`;
        throw PORT_TAKEN.test(log) ? new PortTakenError(message) : new Error(message);
      }
      if (await answers(`${conductor.url}/api/metadata/taskdefs`)) break;
      if (Date.now() > deadline) {
        await conductor.stopJvm();
        throw new Error(`Conductor's API did not answer on port ${port} within ${options.readyTimeoutMs ?? 180_000} ms; see ${logFile}`);
      }
      await sleep(200);
    }
    conductor.readyAfterMs = Date.now() - started;
    return conductor;
  }

  /** Everything the server has logged so far. */
  log(): string {
    return readFileSync(this.logFile, 'utf8');
  }

  /** The JVM's resident memory in KiB (Linux), or undefined once it has exited. */
  rssKiB(): number | undefined {
    try {
      const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${this.child.pid}/status`, 'utf8'));
      return match ? Number(match[1]) : undefined;
    } catch {
      return undefined;
    }
  }

  /** Stops the JVM (SIGTERM, then SIGKILL after 20 s) and its redis-server, and deletes its files but the log. */
  async stop(): Promise<void> {
    await this.stopJvm();
    await this.redis.destroy();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async stopJvm(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const killer = setTimeout(() => this.child.kill('SIGKILL'), 20_000);
    await this.exited;
    clearTimeout(killer);
  }

  /** Spring's failure report (Description, or the last Caused by), for an error message. */
  private failure(): string {
    const log = this.log();
    const description = /^Description:\n\n([\s\S]*?)\n\n/m.exec(log)?.[1];
    const causes = log.split('\n').filter((line) => line.startsWith('Caused by:'));
    return (description ?? causes.at(-1) ?? log.split('\n').slice(-20).join('\n')).trim();
  }
}

class PortTakenError extends Error {}

/** True when `url` answers 2xx within 2 s. */
function answers(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(url, { agent: false, timeout: 2000 }, (res) => {
      res.resume();
      res.on('end', () => resolve((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300));
      res.on('error', () => resolve(false));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}
