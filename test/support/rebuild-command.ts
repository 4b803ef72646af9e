import { ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { eventually } from './eventually.js';
import { ROOT } from './infra.js';

export interface CommandExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/**
 * The built rebuild command (dist/rebuild/main.js, from `npm run build`) as its own process, as an
 * operator runs it: `start` (default), `status` or `abort`, on the service's environment. Keeps what
 * it prints, stdout and stderr apart; only the process spawned here is ever signalled, by its pid.
 */
export class RebuildCommand {
  readonly stdout: string[] = [];
  readonly stderr: string[] = [];
  readonly exited: Promise<CommandExit>;
  readonly startedAt = Date.now();
  /** When it exited (Date.now()), once it has. */
  exitedAt: number | undefined;
  private readonly child: ChildProcess;

  constructor(
    env: Record<string, string>,
    readonly args: readonly string[] = [],
  ) {
    this.child = spawn(process.execPath, [join(ROOT, 'dist', 'rebuild', 'main.js'), ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    for (const [stream, lines] of [
      [this.child.stdout!, this.stdout],
      [this.child.stderr!, this.stderr],
    ] as const) {
      let pending = '';
      stream.on('data', (chunk: Buffer) => {
        const parts = (pending + chunk.toString()).split('\n');
        pending = parts.pop() ?? '';
        lines.push(...parts);
      });
      stream.on('end', () => pending && lines.push(pending));
    }
    this.exited = Promise.all([once(this.child, 'exit'), once(this.child.stdout!, 'close'), once(this.child.stderr!, 'close')]).then(([[code, signal]]) => {
      this.exitedAt = Date.now();
      return { code: code as number | null, signal: signal as NodeJS.Signals | null };
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Everything it printed, stdout then stderr. */
  get output(): string {
    return [...this.stdout, ...this.stderr].join('\n');
  }

  lines(pattern: RegExp): string[] {
    return [...this.stdout, ...this.stderr].filter((line) => pattern.test(line));
  }

  waitForOutput(pattern: RegExp, timeoutMs = 60_000): Promise<string> {
    return eventually(`the rebuild command to print ${pattern}`, () => this.lines(pattern)[0], { timeoutMs, intervalMs: 50 });
  }

  /** Its exit, within `timeoutMs`; past that it is killed and this throws with the tail of its output. */
  async exit(timeoutMs: number): Promise<CommandExit> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
    const outcome = await Promise.race([this.exited, timedOut]);
    clearTimeout(timer);
    if (outcome !== 'timeout') return outcome;
    await this.stop();
    throw new Error(`rebuild ${this.args.join(' ')} did not exit within ${timeoutMs} ms; killed. Its output:\n${this.tail()}`);
  }

  /** The last lines it printed, for a failure message. */
  tail(lines = 40): string {
    return [...this.stdout.map((line) => `out| ${line}`), ...this.stderr.map((line) => `err| ${line}`)].slice(-lines).join('\n');
  }

  signal(signal: NodeJS.Signals): void {
    if (this.running) this.child.kill(signal);
  }

  /** Makes sure it is gone (at the end of a test, whatever happened). */
  async stop(): Promise<void> {
    this.signal('SIGKILL');
    await this.exited;
  }
}

/** Runs a command that ends by itself (`status`, `abort`) and returns its exit and output. */
export async function runRebuildCommand(env: Record<string, string>, args: readonly string[], timeoutMs = 60_000): Promise<{ exit: CommandExit; command: RebuildCommand }> {
  const command = new RebuildCommand(env, args);
  const exit = await command.exit(timeoutMs);
  return { exit, command };
}
