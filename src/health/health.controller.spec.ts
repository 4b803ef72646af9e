import { ServerResponse } from 'node:http';
import { jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TerminusModule } from '@nestjs/terminus';
import { IngestState } from '../kafka/ingest-state.js';
import { CatchUpSnapshot, StartupCatchUp } from '../kafka/startup-catch-up.js';
import { DrainState } from '../lifecycle/drain-state.js';
import { ProjectionGenerations } from '../projection/projection-generations.js';
import { ProjectionUnavailableError } from '../projection/projection-unavailable.error.js';
import { RedisConnection } from '../redis/redis-connection.js';
import { HealthController } from './health.controller.js';
import { REDIS_PING_TIMEOUT_MS, ReadinessIndicators } from './readiness-indicators.js';

/** What a handler wrote: its status and JSON body. */
class RecordedResponse {
  status: number | undefined;
  headers: Record<string, unknown> = {};
  body: any;

  writeHead(status: number, headers: Record<string, unknown>): this {
    this.status = status;
    this.headers = headers;
    return this;
  }

  end(bytes: Buffer): this {
    this.body = JSON.parse(bytes.toString());
    return this;
  }
}

describe('HealthController (readiness logic, behind fakes of Redis and the generation pointer)', () => {
  let controller: HealthController;
  let drain: DrainState;
  let ingest: IngestState;
  /** What the next PING does. */
  let ping: () => Promise<string>;
  let generation: number | undefined;
  let catchUp: CatchUpSnapshot;
  /** The rest of the pointer as the instance last read it. */
  let rebuildPointer: Record<string, unknown>;

  const ready = async () => {
    const res = new RecordedResponse();
    await controller.ready(res as unknown as ServerResponse);
    return res;
  };

  beforeAll(() => Logger.overrideLogger(false));

  beforeEach(async () => {
    ping = async () => 'PONG';
    generation = 1;
    catchUp = { phase: 'caught-up' };
    rebuildPointer = {};
    const module = await Test.createTestingModule({
      imports: [TerminusModule.forRoot({ logger: false })],
      controllers: [HealthController],
      providers: [
        ReadinessIndicators,
        DrainState,
        IngestState,
        { provide: StartupCatchUp, useValue: { snapshot: () => catchUp } },
        { provide: RedisConnection, useValue: { client: { ping: () => ping() } } },
        {
          provide: ProjectionGenerations,
          useValue: {
            currentGeneration: () => {
              if (generation === undefined) throw new ProjectionUnavailableError('generation pointer not read yet');
              return generation;
            },
            snapshot: () => ({ current: generation, ...rebuildPointer }),
          },
        },
      ],
    }).compile();
    controller = module.get(HealthController);
    drain = module.get(DrainState);
    ingest = module.get(IngestState);
    ingest.enter('consuming', { partitions: [0, 2] });
  });

  afterEach(() => jest.useRealTimers());

  it('is ready when Redis answers, the generation is known and the instance is not draining', async () => {
    const res = await ready();
    expect(res.status).toBe(200);
    expect(res.headers['Cache-Control']).toBe('no-store');
    expect(res.body.status).toBe('ok');
    expect(res.body.error).toEqual({});
    expect(res.body.details).toMatchObject({
      drain: { status: 'up' },
      redis: { status: 'up' },
      projection: { status: 'up', generation: 1, catchUp: 'caught-up' },
      kafka: { status: 'up', phase: 'consuming', partitions: [0, 2] },
    });
  });

  it('reports a rebuild under way and stays ready: reads are served from the current generation', async () => {
    const rebuild = { generation: 2, phase: 'replaying', percent: 41.5, updatedAt: 1_700_000_000_000 };
    rebuildPointer = { building: 2, rebuild };
    const res = await ready();
    expect(res.status).toBe(200);
    expect(res.body.details.projection).toEqual({ status: 'up', generation: 1, building: 2, rebuild, catchUp: 'caught-up' });
  });

  describe('cold start', () => {
    it('is not ready while the projection catches up with the source topic as it was at start', async () => {
      catchUp = { phase: 'catching-up', behind: 1200 };
      const res = await ready();
      expect(res.status).toBe(503);
      expect(res.body.error).toEqual({
        projection: { status: 'down', generation: 1, catchUp: 'catching-up', behind: 1200, message: "catching up: 1200 offsets behind the source topic's high watermarks at start" },
      });
    });

    it('is not ready before the high watermarks at start are known, while Kafka is being reached', async () => {
      catchUp = { phase: 'pending' };
      for (const phase of ['starting', 'provisioning', 'joining'] as const) {
        ingest.enter(phase);
        const res = await ready();
        expect(res.status).toBe(503);
        expect(res.body.error.projection).toMatchObject({ status: 'down', catchUp: 'pending' });
      }
    });

    it('is ready, saying it cannot know, when Kafka has not answered since the start: reads are served from what Redis holds', async () => {
      catchUp = { phase: 'pending' };
      for (const phase of ['retrying', 'failed'] as const) {
        ingest.enter(phase, { error: 'Connection error: connect ECONNREFUSED' });
        const res = await ready();
        expect(res.status).toBe(200);
        expect(res.body.details.projection).toEqual({ status: 'up', generation: 1, catchUp: 'unknown: Kafka has not answered since the start' });
      }
    });
  });

  it('turns 503, naming drain, once draining begins', async () => {
    drain.begin();
    const res = await ready();
    expect(res.status).toBe(503);
    expect(Object.keys(res.body.error)).toEqual(['drain']);
    expect(res.body.error.drain.status).toBe('down');
  });

  it('turns 503, naming redis, when the PING fails', async () => {
    ping = () => Promise.reject(new Error("Stream isn't writeable and enableOfflineQueue options is false"));
    const res = await ready();
    expect(res.status).toBe(503);
    expect(res.body.status).toBe('error');
    expect(res.body.error).toEqual({ redis: { status: 'down', message: expect.stringContaining("Stream isn't writeable") } });
    expect(res.body.info.projection.status).toBe('up');
  });

  it(`turns 503, naming redis, when the PING gets no answer within ${REDIS_PING_TIMEOUT_MS} ms`, async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask', 'performance'] });
    ping = () => new Promise(() => undefined);
    const answered = ready();
    await jest.advanceTimersByTimeAsync(REDIS_PING_TIMEOUT_MS);
    const res = await answered;
    expect(res.status).toBe(503);
    expect(res.body.error.redis).toEqual({ status: 'down', message: `no answer to PING within ${REDIS_PING_TIMEOUT_MS} ms` });
  });

  it('turns 503, naming projection, while the generation is unknown', async () => {
    generation = undefined;
    const res = await ready();
    expect(res.status).toBe(503);
    expect(res.body.error).toEqual({ projection: { status: 'down', message: expect.stringContaining('generation pointer not read yet') } });
  });

  it('names every failing check at once', async () => {
    drain.begin();
    generation = undefined;
    ping = () => Promise.reject(new Error('Connection is closed.'));
    const res = await ready();
    expect(res.status).toBe(503);
    expect(Object.keys(res.body.error).sort()).toEqual(['drain', 'projection', 'redis']);
  });

  it.each(['starting', 'provisioning', 'joining', 'consuming', 'stopped'] as const)('stays ready with Kafka %s, and says so', async (phase) => {
    ingest.enter(phase);
    const res = await ready();
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('ok');
    expect(res.body.details.kafka).toMatchObject({ status: 'up', phase });
  });

  it.each(['retrying', 'failed'] as const)('stays ready with Kafka %s: degraded in the body, 200 in the status', async (phase) => {
    ingest.enter(phase, { error: 'The replication factor 3 is larger than the number of brokers (1)' });
    const res = await ready();
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('degraded');
    expect(res.body.error).toEqual({});
    expect(res.body.details.kafka).toEqual({
      status: 'degraded',
      phase,
      since: expect.any(String),
      partitions: [],
      error: 'The replication factor 3 is larger than the number of brokers (1)',
    });
  });

  it('answers live with 200 whatever readiness says, draining included', () => {
    drain.begin();
    generation = undefined;
    const res = new RecordedResponse();
    controller.live(res as unknown as ServerResponse);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'ok', details: { process: { status: 'up', pid: process.pid } } });
  });
});
