import { INestApplicationContext, Logger, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Logger as PinoNestLogger } from 'nestjs-pino';
import type { DestinationStream } from 'pino';
import { loggerModule } from './logger-module.js';

@Module({})
class EmptyModule {}

/**
 * Nest's `Logger`, as the service's classes use it, through nestjs-pino as the application's logger.
 * nestjs-pino keeps one pino logger per process (here: per spec file), so one context serves every test.
 */
describe('loggerModule', () => {
  const lines: string[] = [];
  const destination: DestinationStream = { write: (line: string) => void lines.push(line) };
  let app: INestApplicationContext;
  const records = () => lines.splice(0).map((line) => JSON.parse(line) as Record<string, unknown>);

  let boot: Record<string, unknown>[];

  beforeAll(async () => {
    app = await NestFactory.createApplicationContext(
      { module: EmptyModule, imports: [loggerModule({ level: 'verbose', format: 'json' }, destination)] },
      { bufferLogs: true, abortOnError: false },
    );
    // Nothing written yet: Nest's lines wait for the logger.
    boot = records();
    app.useLogger(app.get(PinoNestLogger));
    boot.push(...records());
  });

  afterAll(async () => {
    await app?.close();
  });

  beforeEach(() => lines.splice(0));

  it("writes Nest's own start-up lines, held until the pino logger is set, as JSON", () => {
    expect(boot).toContainEqual(expect.objectContaining({ level: 'info', context: 'InstanceLoader', msg: 'EmptyModule dependencies initialized' }));
  });

  it('merges an object given first into the line, keeps the text as msg and adds the context', () => {
    new Logger('DeadLetters').warn({ topic: 'task-updates', partition: 2, offset: '7' }, 'dead-lettered task-updates partition 2 offset 7: INVALID_JSON');
    expect(records()).toEqual([
      {
        level: 'warn',
        time: expect.any(String),
        pid: process.pid,
        hostname: expect.any(String),
        context: 'DeadLetters',
        topic: 'task-updates',
        partition: 2,
        offset: '7',
        msg: 'dead-lettered task-updates partition 2 offset 7: INVALID_JSON',
      },
    ]);
  });

  it('writes an error given under err with its stack, the fields and the text', () => {
    new Logger('Ingest').error({ topic: 't', partition: 0, offset: '3', err: new TypeError('decoder defect') }, 'decoding t partition 0 offset 3 failed unexpectedly');
    const [record] = records();
    expect(record).toMatchObject({ level: 'error', context: 'Ingest', topic: 't', partition: 0, offset: '3', msg: 'decoding t partition 0 offset 3 failed unexpectedly' });
    expect(record.err).toMatchObject({ type: 'TypeError', message: 'decoder defect', stack: expect.stringContaining('TypeError: decoder defect\n    at ') });
  });

  it("writes Nest's (message, stack) form of an error with the stack under err", () => {
    const error = new Error('boom');
    new Logger('ExceptionsHandler').error(error.message, error.stack);
    expect(records()).toEqual([expect.objectContaining({ level: 'error', context: 'ExceptionsHandler', err: expect.objectContaining({ message: 'boom', stack: error.stack }) })]);
  });

  it('maps every Nest level to pino level names, verbose as trace', () => {
    const logger = new Logger('Levels');
    logger.verbose('v');
    logger.debug('d');
    logger.log('l');
    logger.warn('w');
    logger.error('e');
    logger.fatal('f');
    expect(records().map(({ level, context, msg }) => [level, context, msg])).toEqual([
      ['trace', 'Levels', 'v'],
      ['debug', 'Levels', 'd'],
      ['info', 'Levels', 'l'],
      ['warn', 'Levels', 'w'],
      ['error', 'Levels', 'e'],
      ['fatal', 'Levels', 'f'],
    ]);
  });
});
