import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './support/infra.js';
import { freePort } from './support/server-process.js';

const SCRIPT = join(ROOT, 'scripts', 'infra.sh');
const isAlive = (p: number) => {
  try {
    process.kill(p, 0);
    return true;
  } catch {
    return false;
  }
};
const pid = (name: string) => readFileSync(join(ROOT, '.local', 'run', `${name}.pid`), 'utf8').trim();

/** A copy of the scripts (and the e2e setup) with their own .local/, so the shared infrastructure is untouched. */
function copyOfScripts(): string {
  const root = mkdtempSync(join(tmpdir(), 'tc-infra-'));
  cpSync(join(ROOT, 'scripts'), join(root, 'scripts'), { recursive: true });
  mkdirSync(join(root, 'test', 'support'), { recursive: true });
  for (const file of ['global-setup.mjs', 'global-teardown.mjs', 'leftover-handles.mjs']) cpSync(join(ROOT, 'test', 'support', file), join(root, 'test', 'support', file));
  symlinkSync(join(ROOT, 'node_modules'), join(root, 'node_modules'));
  return root;
}

/** Runs the copy's e2e global setup or teardown, as jest would. */
const runGlobal = (root: string, which: 'setup' | 'teardown', env: NodeJS.ProcessEnv) =>
  spawnSync(process.execPath, ['--input-type=module', '-e', `(await import(${JSON.stringify(join(root, 'test', 'support', `global-${which}.mjs`))})).default()`], {
    env,
    encoding: 'utf8',
    timeout: 120_000,
  });

describe('scripts/infra.sh', () => {
  it('reuses what is already running on a second up', () => {
    const before = [pid('kafka'), pid('redis')];
    const result = spawnSync('bash', [SCRIPT, 'up'], { encoding: 'utf8', timeout: 60_000 });
    expect(result.status).toBe(0);
    expect(result.stderr).toContain('kafka already running');
    expect(result.stderr).toContain('redis already running');
    expect([pid('kafka'), pid('redis')]).toEqual(before);
    expect(readFileSync(join(ROOT, '.local', 'infra.env'), 'utf8')).toMatch(/^KAFKA_BROKERS=.+\nREDIS_URL=redis:\/\/.+\n(REDIS_CLUSTER_NODES=.+\n)?$/);
  });

  it('up then down, in a checkout of its own, leaves no process behind', () => {
    const root = copyOfScripts();
    const env = { ...process.env, TC_KAFKA_PORT: '29192', TC_KAFKA_CONTROLLER_PORT: '29193', TC_REDIS_PORT: '29179' };
    const script = join(root, 'scripts', 'infra.sh');
    // A stale pid file naming an unrelated live process (as after a reboot): neither reused nor killed.
    const bystander = spawn('sleep', ['120'], { stdio: 'ignore' });
    mkdirSync(join(root, '.local', 'run'), { recursive: true });
    writeFileSync(join(root, '.local', 'run', 'kafka.pid'), `${bystander.pid}\n`);
    try {
      const up = spawnSync('bash', [script, 'up'], { env, encoding: 'utf8', timeout: 120_000 });
      expect(up.stderr).toContain('ready in');
      expect(up.status).toBe(0);
      const pids = ['kafka', 'redis'].map((name) => Number(readFileSync(join(root, '.local', 'run', `${name}.pid`), 'utf8')));
      expect(pids.every((p) => isAlive(p))).toBe(true);

      // One service at a time: the other stays up, and so do its settings.
      const [kafkaPid, redisPid] = pids;
      expect(spawnSync('bash', [script, 'down', 'kafka'], { env, encoding: 'utf8', timeout: 60_000 }).status).toBe(0);
      expect([isAlive(kafkaPid), isAlive(redisPid)]).toEqual([false, true]);
      expect(existsSync(join(root, '.local', 'infra.env'))).toBe(true);

      // With Redis up and Kafka down, the e2e setup starts Kafka and the teardown stops Kafka only.
      const setup = runGlobal(root, 'setup', env);
      expect(setup.status).toBe(0);
      expect(setup.stderr).toContain('redis already running');
      const startedKafka = Number(readFileSync(join(root, '.local', 'run', 'kafka.pid'), 'utf8'));
      expect(isAlive(startedKafka)).toBe(true);
      expect(runGlobal(root, 'teardown', env).status).toBe(0);
      expect([isAlive(startedKafka), isAlive(redisPid)]).toEqual([false, true]);
      pids.push(startedKafka);

      const down = spawnSync('bash', [script, 'down'], { env, encoding: 'utf8', timeout: 60_000 });
      expect(down.status).toBe(0);
      expect(pids.filter((p) => isAlive(p))).toEqual([]);
      expect(existsSync(join(root, '.local', 'infra.env'))).toBe(false);
      expect(spawnSync('bash', [script, 'status'], { env, encoding: 'utf8' }).stdout).toBe('kafka: stopped\nredis: stopped\nredis-cluster: stopped\n');
      expect(pids).not.toContain(bystander.pid);
      expect(isAlive(bystander.pid!)).toBe(true);
    } finally {
      bystander.kill();
      spawnSync('bash', [script, 'down'], { env });
      rmSync(root, { recursive: true, force: true });
    }
  });

  describe('when a port it needs is taken by another process', () => {
    /** `up` in a fresh copy; how long it took, its exit status and its one line of error. */
    function upInCopy(env: Record<string, string>): { status: number | null; ms: number; stderr: string; root: string } {
      const root = copyOfScripts();
      const startedAt = Date.now();
      const result = spawnSync('bash', [join(root, 'scripts', 'infra.sh'), 'up'], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000 });
      return { status: result.status, ms: Date.now() - startedAt, stderr: result.stderr, root };
    }

    it('fails at once naming the port, the process holding it and TC_REDIS_PORT, and starts nothing', async () => {
      const port = await freePort();
      // A foreign listener: a process of its own, so its name and pid are known.
      const squatter = spawn(process.execPath, ['-e', `require('net').createServer().listen(${port}, '127.0.0.1', () => console.log('listening'))`], {
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      await once(squatter.stdout!, 'data');
      const { status, ms, stderr, root } = upInCopy({ TC_KAFKA_PORT: String(await freePort()), TC_KAFKA_CONTROLLER_PORT: String(await freePort()), TC_REDIS_PORT: String(port) });
      try {
        expect(status).not.toBe(0);
        expect(ms).toBeLessThan(5_000);
        const lines = stderr.trim().split('\n');
        expect(lines).toHaveLength(1);
        expect(lines[0]).toContain(`port ${port}`);
        expect(lines[0]).toContain(`node (pid ${squatter.pid})`);
        expect(lines[0]).toContain('TC_REDIS_PORT');
        expect(existsSync(join(root, '.local', 'run', 'redis.pid'))).toBe(false);
        expect(existsSync(join(root, '.local', 'run', 'kafka.pid'))).toBe(false);
      } finally {
        squatter.kill();
        rmSync(root, { recursive: true, force: true });
      }
    });

    it("fails at once naming the shared broker's port, its java process and TC_KAFKA_PORT, when another copy's Kafka holds it", async () => {
      const sharedPort = readFileSync(join(ROOT, '.local', 'infra.env'), 'utf8').match(/KAFKA_BROKERS=127\.0\.0\.1:(\d+)/)![1];
      const { status, ms, stderr, root } = upInCopy({ TC_KAFKA_PORT: sharedPort, TC_KAFKA_CONTROLLER_PORT: String(await freePort()), TC_REDIS_PORT: String(await freePort()) });
      try {
        expect(status).not.toBe(0);
        expect(ms).toBeLessThan(5_000);
        expect(stderr).toContain(`port ${sharedPort}`);
        expect(stderr).toContain(`java (pid ${pid('kafka')})`);
        expect(stderr).toContain('TC_KAFKA_PORT');
        expect(existsSync(join(root, '.local', 'run', 'redis.pid'))).toBe(false);
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    });
  });

  describe.each(['java', 'mvn', 'redis-server'])('without %s', (missing) => {
    let bin: string;

    beforeAll(() => {
      // A PATH holding every tool the script uses except the one under test.
      bin = mkdtempSync(join(tmpdir(), 'tc-path-'));
      for (const tool of ['bash', 'java', 'mvn', 'redis-server', 'redis-cli', 'node', 'sed', 'cat', 'sha256sum', 'cut', 'mkdir', 'dirname']) {
        if (tool === missing) continue;
        const path = execFileSync('bash', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim();
        symlinkSync(path, join(bin, tool));
      }
    });

    afterAll(() => rmSync(bin, { recursive: true, force: true }));

    it('names it, points to docker compose, and exits non-zero', () => {
      const result = spawnSync(join(bin, 'bash'), [SCRIPT, 'up'], { env: { PATH: bin }, encoding: 'utf8', timeout: 30_000 });
      expect(result.status).not.toBe(0);
      const lines = result.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(`'${missing}' is not installed`);
      expect(lines[0]).toContain('docker compose up');
    });
  });
});
