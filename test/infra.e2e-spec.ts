import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './support/infra.js';

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

describe('scripts/infra.sh', () => {
  it('reuses what is already running on a second up', () => {
    const before = [pid('kafka'), pid('redis')];
    const result = spawnSync('bash', [SCRIPT, 'up'], { encoding: 'utf8', timeout: 60_000 });
    expect(result.status).toBe(0);
    expect(result.stderr).toContain('kafka already running');
    expect(result.stderr).toContain('redis already running');
    expect([pid('kafka'), pid('redis')]).toEqual(before);
    expect(readFileSync(join(ROOT, '.local', 'infra.env'), 'utf8')).toMatch(/^KAFKA_BROKERS=.+\nREDIS_URL=redis:\/\/.+\n$/);
  });

  it('up then down, in a checkout of its own, leaves no process behind', () => {
    // A copy of the scripts with their own .local/ and ports, so the shared infrastructure is untouched.
    const root = mkdtempSync(join(tmpdir(), 'tc-infra-'));
    cpSync(join(ROOT, 'scripts'), join(root, 'scripts'), { recursive: true });
    symlinkSync(join(ROOT, 'node_modules'), join(root, 'node_modules'));
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

      const down = spawnSync('bash', [script, 'down'], { env, encoding: 'utf8', timeout: 60_000 });
      expect(down.status).toBe(0);
      expect(pids.filter((p) => isAlive(p))).toEqual([]);
      expect(existsSync(join(root, '.local', 'infra.env'))).toBe(false);
      expect(spawnSync('bash', [script, 'status'], { env, encoding: 'utf8' }).stdout).toBe('kafka: stopped\nredis: stopped\n');
      expect(pids).not.toContain(bystander.pid);
      expect(isAlive(bystander.pid!)).toBe(true);
    } finally {
      bystander.kill();
      spawnSync('bash', [script, 'down'], { env });
      rmSync(root, { recursive: true, force: true });
    }
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
