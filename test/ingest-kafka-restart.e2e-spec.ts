import { setTimeout as sleep } from 'node:timers/promises';
import { AppConfig } from '../src/config/app-config.js';
import { eventually } from './support/eventually.js';
import { testConfig } from './support/infra.js';
import { PrivateKafka } from './support/private-kafka.js';
import { freePort } from './support/server-process.js';
import { ProjectionReader } from './support/projection-reader.js';
import { ProjectionWatch } from './support/projection-watch.js';
import { sampleTaskBytes } from './support/sample-task.js';
import { parseLogLine, serviceEnvironment, ServiceProcess } from './support/service-process.js';
import { TestKafka } from './support/test-kafka.js';

// The built service (dist/main.js, from `npm run build`) on a broker of the suite's own, which is
// SIGKILLed and started again. The shared broker is never touched.

const TASKS = 200;
/** The production default: resuming must not depend on it, and a wait for it would show. */
const SESSION_TIMEOUT_MS = 30_000;
/**
 * Long enough that kafkajs's own retries run out and the consumer crashes and rejoins as a new
 * member, the case the previous-member removal is for: with 10 s down (about 24 s with the
 * broker's own restart) the consumer sometimes rides the outage out as the same member.
 */
const DOWN_MS = 20_000;
/**
 * From the broker answering again to every event produced after it applied. Measured 0.4 to
 * 4.3 s (the consumer's next reconnect attempt, a join, a fetch); waiting out the crashed
 * consumer's session took the whole session timeout. Generous for a noisy 2-core machine, and
 * still below it.
 */
const RESUME_BOUND_MS = 20_000;

const sum = (values: Iterable<number>) => [...values].reduce((total, value) => total + value, 0);

describe('ingest while its Kafka broker is killed and restarted (a private broker)', () => {
  let broker: PrivateKafka;
  let config: AppConfig;
  let reader: ProjectionReader;
  let service: ServiceProcess | undefined;
  let kafka: TestKafka | undefined;
  const taskIds = Array.from({ length: TASKS }, (_, index) => `kafka-restart-${index}`);

  const sendRound = (update: number) =>
    kafka!.send(config.kafka.topic, taskIds.map((taskId) => ({ key: taskId, value: sampleTaskBytes(taskId, update) })));
  const allAt = async (update: number) => {
    const tasks = await reader.read(taskIds);
    return taskIds.every((taskId) => tasks.get(taskId)?.value?.equals(sampleTaskBytes(taskId, update)));
  };
  const committedToTheEnd = async () => {
    const end = await kafka!.endOffsets(config.kafka.topic);
    const committed = await kafka!.committedOffsets(config.kafka.groupId, config.kafka.topic);
    return [...end].every(([partition, offset]) => committed.get(partition) === offset);
  };

  beforeAll(async () => {
    broker = await PrivateKafka.start();
    config = testConfig('ingest-kafka-restart', {
      http: { port: await freePort() },
      kafka: { brokers: broker.brokers, sessionTimeoutMs: SESSION_TIMEOUT_MS },
    });
    reader = new ProjectionReader(config.redis);
  }, 180_000);

  afterAll(async () => {
    await service?.stop();
    await kafka?.close();
    await reader?.close();
    await broker?.destroy();
  });

  it('resumes soon after the broker is back, well within the session timeout: nothing lost, nothing moves backwards, one line about the wait, no flood of kafkajs errors', async () => {
    service = new ServiceProcess(serviceEnvironment(config));
    await service.waitForOutput(/kafka consumer joined group/);
    kafka = await TestKafka.connect(broker.brokers);
    const watch = new ProjectionWatch(reader, taskIds);
    let outageLines: string[] = [];
    try {
      for (let update = 0; update < 3; update += 1) await sendRound(update);
      await eventually('the first rounds to be applied', () => allAt(2));
      await eventually('the first rounds to be committed', committedToTheEnd);
      // Nothing is produced while the broker is down.
      await kafka.close();
      kafka = undefined;

      const outageFrom = service.output.length;
      await broker.kill();
      const killedAt = Date.now();
      await sleep(DOWN_MS);
      const restartedAt = Date.now();
      await broker.start();
      const readyAt = Date.now();

      kafka = await TestKafka.connect(broker.brokers);
      const sent = await sendRound(3);
      expect(new Set(sent.map(({ partition }) => partition))).toEqual(new Set([0, 1, 2, 3]));
      const resumedAt = await eventually('every event produced after the restart to be applied', async () => ((await allAt(3)) ? Date.now() : undefined), {
        timeoutMs: SESSION_TIMEOUT_MS + 60_000,
        intervalMs: 20,
      });
      outageLines = service.output.slice(outageFrom);
      const joined = outageLines.find((line) => /kafka consumer joined group/.test(line));
      process.stdout.write(
        `[measure] Kafka SIGKILLed for ${restartedAt - killedAt} ms, ready ${readyAt - restartedAt} ms after its restart; ` +
          `every event produced after that applied ${resumedAt - readyAt} ms after the broker was ready (session timeout ${SESSION_TIMEOUT_MS} ms); ` +
          `${(joined && parseLogLine(joined)?.msg.replace(/.*kafka consumer joined/, 'joined')) ?? 'no join line'}\n`,
      );
      expect(resumedAt - readyAt).toBeLessThan(RESUME_BOUND_MS);

      await eventually('everything to be committed', committedToTheEnd);
    } finally {
      await watch.stop();
    }

    expect(watch.regressions).toEqual([]);
    expect(await allAt(3)).toBe(true);
    expect(sum((await kafka.endOffsets(config.kafka.dlqTopic)).values())).toBe(0);

    process.stdout.write(`[measure] the service's log from the kill to the resume (${outageLines.length} lines):\n${outageLines.join('\n')}\n`);
    // One line says that the join would wait for the crashed member, and for how long at most; a
    // consumer that rode the outage out as the same member has no previous member to remove.
    const crashed = outageLines.some((line) => /kafka consumer crashed/.test(line));
    const outageLogs = outageLines.flatMap((line) => parseLogLine(line) ?? []);
    expect(outageLogs.filter(({ msg }) => /previous member/.test(msg)).map(({ level, context, msg }) => ({ level, context, msg }))).toEqual(crashed ? [
      {
        level: 'info',
        context: 'IngestConsumer',
        msg: expect.stringMatching(
          new RegExp(`^kafka consumer rejoins group ${config.kafka.groupId} as a new member; the group still holds its previous member \\S+, which would hold the join until that member's session expires \\(up to ${SESSION_TIMEOUT_MS} ms\\): removing it$`),
        ),
      },
    ] : []);
    // kafkajs logged two or three connection errors per reconnect attempt: 20 to 30 lines over
    // such an outage. Folded, about one per 30 s, plus one per consumer restart.
    const kafkaErrors = outageLogs.filter((record) => record.level === 'error' && record.context === 'Kafka');
    expect(kafkaErrors.length).toBeLessThanOrEqual(8);
  }, 300_000);
});
