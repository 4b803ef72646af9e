import { eventually } from './support/eventually.js';
import { TEST_TOKEN, testConfig } from './support/infra.js';
import { sampleTaskBytes } from './support/sample-task.js';
import { freePort } from './support/server-process.js';
import { parseLogLine, serviceEnvironment, ServiceProcess } from './support/service-process.js';
import { TestKafka } from './support/test-kafka.js';

// The built service (dist/main.js, from `npm run build`) as its own process, with LOG_FORMAT=json
// as it is deployed: what its output is, line by line, from start to exit.

const KEY_ID = 'log-reader';
const KEY_SECRET = 'key-secret-of-the-log-suite-7f3a';
const JWT_SECRET = 'jwt-secret-of-the-log-suite-0123456789abcdef';
const WRONG_TOKEN = 'wrong-token-of-the-log-suite-5c1e';
const COOKIE = 'session=cookie-of-the-log-suite-9d2b';

describe('the log of the service process (LOG_FORMAT=json)', () => {
  let service: ServiceProcess | undefined;
  let kafka: TestKafka | undefined;

  afterEach(async () => {
    await service?.stop();
    await kafka?.close();
  });

  it('is one JSON object per line from start to exit, gives a dead letter its event\'s topic, partition and offset as fields, and never shows a token or secret', async () => {
    const config = testConfig('logs', { http: { port: await freePort() } });
    // verbose: the most the service ever logs, so that nothing it logs at any level may show a token.
    service = new ServiceProcess(serviceEnvironment(config, { LOG_FORMAT: 'json', LOG_LEVEL: 'verbose', AUTH_KEYS: `${KEY_ID}:${KEY_SECRET}`, AUTH_JWT_SECRET: JWT_SECRET }));
    const base = `http://127.0.0.1:${config.http.port}`;
    await service.waitForLog({ context: 'IngestConsumer', msg: /^kafka consumer joined group / });
    kafka = await TestKafka.connect(config.kafka.brokers);

    // An event that is not JSON is dead-lettered; its line says where the event is, as fields.
    const produced = await kafka.sendOne(config.kafka.topic, { key: 'log-not-json', value: Buffer.from('{not json') });
    const deadLettered = await service.waitForLog({ context: 'DeadLetters', msg: /^dead-lettered / });
    expect(deadLettered).toMatchObject({
      level: 'warn',
      topic: config.kafka.topic,
      partition: produced.partition,
      offset: String(produced.offset),
      msg: `dead-lettered ${config.kafka.topic} partition ${produced.partition} offset ${produced.offset}: INVALID_JSON: value is not JSON (SyntaxError)`,
    });

    await kafka.sendOne(config.kafka.topic, { key: 'log-task', value: sampleTaskBytes('log-task', 1) });
    await eventually('the task to be readable', async () => (await fetch(`${base}/tasks/log-task`, { headers: { 'X-Authorization': TEST_TOKEN } })).status === 200);

    // Tokens, valid and not, in both headers, on the read route and on routes Express serves.
    const exchange = (keySecret: string) =>
      fetch(`${base}/api/token`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ keyId: KEY_ID, keySecret }) });
    const issued = await exchange(KEY_SECRET);
    expect(issued.status).toBe(200);
    const { token: jwt } = (await issued.json()) as { token: string };
    expect((await exchange(`${KEY_SECRET}-wrong`)).status).toBe(401);
    const tokens = [TEST_TOKEN, jwt, WRONG_TOKEN, `${jwt.slice(0, -4)}AAAA`];
    const answers: number[] = [];
    for (const token of tokens) {
      for (const headers of [{ 'X-Authorization': token }, { Authorization: `Bearer ${token}` }] as Record<string, string>[]) {
        for (const path of ['/tasks/log-task', '/api/tasks/log-task', '/tasks/never-produced', '/health/ready', '/no-such-route']) {
          const response = await fetch(`${base}${path}`, { headers: { ...headers, Cookie: COOKIE } });
          await response.arrayBuffer();
          answers.push(response.status);
        }
      }
    }
    // Both valid and refused requests were answered, on every route.
    expect(new Set(answers)).toEqual(new Set([200, 401, 404]));

    service.signal('SIGTERM');
    expect(await service.exited).toEqual({ code: 0, signal: null });
    // Its last line, written in the same tick as process.exit, is there, and last: no line was lost at exit.
    await service.waitForLog({ context: 'Shutdown', msg: 'shut down cleanly; exiting' }, 5000);
    expect(service.logs().at(-1)).toMatchObject({ context: 'Shutdown', msg: 'shut down cleanly; exiting' });

    const output = service.output.filter((line) => line.length > 0);
    expect(output.filter((line) => parseLogLine(line) === undefined)).toEqual([]);
    const records = service.logs();
    expect(records.length).toBeGreaterThan(20);
    for (const record of records) {
      expect(record).toMatchObject({ level: expect.stringMatching(/^(trace|debug|info|warn|error|fatal)$/), time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/), msg: expect.any(String) });
    }
    // From boot (Nest's own lines, buffered until pino was the logger) to the end of the shutdown.
    expect(records[0]).toMatchObject({ context: 'NestFactory', msg: 'Starting Nest application...' });
    expect(service.logs({ context: 'Shutdown', msg: /^SIGTERM received/ })).toHaveLength(1);

    // No line per request, and no request in any line: a line logged while Express serves a
    // request carries the request's id only.
    expect(records.filter((record) => 'req' in record || 'res' in record || /request (completed|errored)/.test(record.msg))).toEqual([]);
    expect(service.logs({ context: 'Readiness' })[0]).toEqual(expect.objectContaining({ reqId: expect.anything() }));
    const text = output.join('\n');
    for (const secret of [...tokens, KEY_SECRET, JWT_SECRET, COOKIE.split('=')[1]]) {
      expect({ secret, shown: text.includes(secret) }).toEqual({ secret, shown: false });
    }
  });
});
