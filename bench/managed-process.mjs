// A child process the benchmark starts and must stop: its output goes to a log file, it is stopped
// by its own pid (SIGTERM, then SIGKILL after a bound), and an early exit is reported with its log.
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ROOT } from './bench-settings.mjs';

const STOP_TIMEOUT_MS = 20_000;

export class ManagedProcess {
  static start({ name, runName, args, env }) {
    const logDir = join(ROOT, '.local', 'bench-logs', runName);
    mkdirSync(logDir, { recursive: true });
    const logFile = join(logDir, `${name}.log`);
    const fd = openSync(logFile, 'a');
    // stdin is a pipe the bench holds: the bench's own children (the floors) exit when it closes,
    // so nothing outlives even a bench that is killed outright.
    const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['pipe', fd, fd] });
    closeSync(fd);
    return new ManagedProcess(name, child, logFile);
  }

  constructor(name, child, logFile) {
    this.name = name;
    this.child = child;
    this.logFile = logFile;
    this.exitStatus = undefined;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitStatus = { code, signal };
        resolve(this.exitStatus);
      });
      child.once('error', (error) => {
        this.exitStatus = { code: null, signal: null, error };
        resolve(this.exitStatus);
      });
    });
  }

  get running() {
    return this.exitStatus === undefined;
  }

  describeExit() {
    const { code, signal, error } = this.exitStatus ?? {};
    return error ? `failed to start (${error.message})` : `exited with ${signal ? `signal ${signal}` : `code ${code}`}`;
  }

  logTail(lines = 30) {
    try {
      return readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  async stop() {
    if (!this.running) return this.exitStatus;
    this.child.kill('SIGTERM');
    const stopped = await Promise.race([this.exited, sleep(STOP_TIMEOUT_MS).then(() => undefined)]);
    if (stopped) return stopped;
    console.error(`[bench] ${this.name} (pid ${this.child.pid}) did not stop within ${STOP_TIMEOUT_MS / 1000} s; killing it`);
    this.child.kill('SIGKILL');
    return this.exited;
  }
}

/** A port that was free on loopback a moment ago, for a child that takes its port as a setting. */
export function freeLoopbackPort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}
