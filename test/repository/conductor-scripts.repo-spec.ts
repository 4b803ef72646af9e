import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');
const DIR = join(ROOT, 'scripts', 'conductor');
const template = readFileSync(join(DIR, 'conductor.properties.template'), 'utf8');
const pom = readFileSync(join(DIR, 'pom.xml'), 'utf8');
const testConductor = readFileSync(join(ROOT, 'test', 'support', 'test-conductor.ts'), 'utf8');
const properties = new Map(
  template
    .split('\n')
    .filter((line) => line.includes('=') && !line.startsWith('#'))
    .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
);

describe('scripts/conductor (the stock Conductor server of the e2e tests)', () => {
  it('states the Conductor version once, in pom.xml, and fetches the boot jar of that version', () => {
    const version = /<conductor\.version>(\d+\.\d+\.\d+)<\/conductor\.version>/.exec(pom)?.[1];
    expect(version).toBeDefined();
    expect(pom).toContain('<version>${conductor.version}</version>');
    expect(pom).toContain('<classifier>boot</classifier>');
    for (const file of [template, testConductor, readFileSync(join(DIR, 'fetch.sh'), 'utf8')]) expect(file).not.toContain(version);
  });

  it("points Conductor's Redis, queues and lock at the private redis-server, never the jar's localhost:6379", () => {
    expect(properties.get('conductor.redis.hosts')).toBe('@REDIS_HOST@:@REDIS_PORT@:us-east-1c');
    expect(properties.get('conductor.redis-lock.server-address')).toBe('redis://@REDIS_HOST@:@REDIS_PORT@');
    expect(testConductor).toContain("REDIS_HOST: '127.0.0.1'");
    expect(properties.get('conductor.db.type')).toBe('redis_standalone');
    expect(properties.get('conductor.queue.type')).toBe('redis_standalone');
  });

  it('turns on both webhooks with what the task publisher needs to start: the workflow publisher and a list of statuses', () => {
    expect(properties.get('conductor.task-status-listener.type')).toBe('task_publisher');
    expect(properties.get('conductor.workflow-status-listener.type')).toBe('workflow_publisher');
    expect(properties.get('conductor.status-notifier.notification.subscribed-task-statuses')?.split(',')).toEqual(
      expect.arrayContaining(['SCHEDULED', 'IN_PROGRESS', 'COMPLETED', 'FAILED', 'CANCELED']),
    );
  });

  it('has TestConductor fill in every placeholder of the template', () => {
    const placeholders = [...new Set([...template.matchAll(/@([A-Z_]+)@/g)].map((match) => match[1]))].sort();
    const filled = [...testConductor.matchAll(/^\s+([A-Z_]+): /gm)].map((match) => match[1]).sort();
    expect(filled).toEqual(placeholders);
  });
});
