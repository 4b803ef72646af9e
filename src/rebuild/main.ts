import 'reflect-metadata';
import { parseArgs } from 'node:util';
import { INestApplicationContext, LoggerService } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Logger } from 'nestjs-pino';
import { AppConfig } from '../config/app-config.js';
import { ConfigError } from '../config/config-error.js';
import { loadConfig } from '../config/load-config.js';
import { logDestination } from '../logging/pino-settings.js';
import { InstanceRegistry } from './instance-registry.js';
import { LockHeldError } from './rebuild-lock.js';
import { RebuildModule } from './rebuild.module.js';
import { RebuildPointer } from './rebuild-pointer.js';
import { answered, describeInstance, FlipRefusedError, InsufficientMemoryError, RebuildRefusedError, RebuildService, StoppedByAbortError } from './rebuild.service.js';
import { describe } from './rebuild-progress.js';

/** Exit codes (README, "Rebuilding the projection"). */
export const EXIT = {
  ok: 0,
  failed: 1,
  /** Stopped by `rebuild abort`. */
  aborted: 3,
  usage: 64,
  /** Redis's maxmemory cannot hold two generations. */
  memory: 69,
  /** Another rebuild holds the lock. */
  locked: 75,
  config: 78,
  /** Stopped by SIGINT or SIGTERM; run again to resume. */
  interrupted: 130,
} as const;

const USAGE = `usage: npm run rebuild -- [start|status|abort] [options]
  start (default)        rebuild the projection from the source topic, then flip reads to it;
                         resumes a rebuild that was stopped
  status                 the generation pointer, the rebuild's state and the running instances
  abort                  stop a rebuild under way (or left behind) and delete what it built
options:
  --max-rate N           start: replay at most N events per second (default: as fast as Redis takes them)
  --ignore-memory        start: start even though Redis's maxmemory looks too small for two generations
  --allow-empty          start: rebuild from an empty source topic even though the projection holds tasks
  --allow-shrink         start: flip even though the new generation holds less than half the tasks of the current one
  --json                 status: print JSON
The service's environment configures it (KAFKA_*, REDIS_*); AUTH_* are not needed.`;

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { 'max-rate': { type: 'string' }, 'ignore-memory': { type: 'boolean' }, 'allow-empty': { type: 'boolean' }, 'allow-shrink': { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (error) {
    return usage((error as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT.ok;
  }
  const command = positionals[0] ?? 'start';
  if (positionals.length > 1 || !['start', 'status', 'abort'].includes(command)) return usage(`unknown command: ${positionals.join(' ')}`);
  let maxEventsPerSecond: number | undefined;
  if (values['max-rate'] !== undefined) {
    maxEventsPerSecond = Number(values['max-rate']);
    if (!/^[1-9][0-9]{0,9}$/.test(values['max-rate'])) return usage('--max-rate must be a whole number of events per second, at least 1');
  }

  let config: AppConfig;
  try {
    config = loadConfig(process.env, { auth: false });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`rebuild: ${error.message}\n`);
    return EXIT.config;
  }

  // `status` prints only its answer; the others log what they do, without Nest's start-up lines.
  // The log goes to stderr, in LOG_FORMAT: stdout is the command's answer (`status --json` is JSON).
  if (command === 'status') config = { ...config, log: { ...config.log, level: 'warn' } };
  // Nest's lines while the context is built wait for the pino logger, so they are in LOG_FORMAT too.
  const app = await NestFactory.createApplicationContext(RebuildModule.forRoot(config, logDestination(config.log, 2)), { abortOnError: false, bufferLogs: true });
  app.useLogger(new CommandLogger(app.get(Logger)));
  const interrupt = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupt.signal.aborted) {
      process.stderr.write(`\nrebuild: ${signal} again: exiting now; run it again to resume\n`);
      process.exit(EXIT.interrupted);
    }
    process.stderr.write(`\nrebuild: ${signal}: stopping; run it again to resume\n`);
    interrupt.abort(new Error(`stopped by ${signal}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await run(app, command, { maxEventsPerSecond, ignoreMemory: values['ignore-memory'] ?? false, allowEmpty: values['allow-empty'] ?? false, allowShrink: values['allow-shrink'] ?? false, json: values.json ?? false }, interrupt.signal);
  } finally {
    await app.close();
  }
}

/** The pino logger without Nest's start-up lines, which say nothing to whoever runs a command. */
class CommandLogger implements LoggerService {
  constructor(private readonly logger: LoggerService) {}

  log(message: unknown, ...params: unknown[]): void {
    const context = params[params.length - 1];
    if (context === 'NestFactory' || context === 'InstanceLoader') return;
    this.logger.log(message, ...params);
  }
  error(message: unknown, ...params: unknown[]): void {
    this.logger.error(message, ...params);
  }
  warn(message: unknown, ...params: unknown[]): void {
    this.logger.warn(message, ...params);
  }
  debug(message: unknown, ...params: unknown[]): void {
    this.logger.debug?.(message, ...params);
  }
  verbose(message: unknown, ...params: unknown[]): void {
    this.logger.verbose?.(message, ...params);
  }
  fatal(message: unknown, ...params: unknown[]): void {
    this.logger.fatal?.(message, ...params);
  }
}

async function run(
  app: INestApplicationContext,
  command: string,
  options: { maxEventsPerSecond?: number; ignoreMemory: boolean; allowEmpty: boolean; allowShrink: boolean; json: boolean },
  signal: AbortSignal,
): Promise<number> {
  const rebuild = app.get(RebuildService);
  try {
    if (command === 'status') return await status(app, options.json);
    if (command === 'abort') {
      const outcome = await rebuild.abort(signal);
      if (outcome.kind === 'nothing') process.stdout.write(`rebuild: nothing to abort: ${outcome.reason}\n`);
      return EXIT.ok;
    }
    const outcome = await rebuild.start({ maxEventsPerSecond: options.maxEventsPerSecond, ignoreMemory: options.ignoreMemory, allowEmpty: options.allowEmpty, allowShrink: options.allowShrink, terminal: process.stderr.isTTY ? process.stderr : undefined }, signal);
    process.stdout.write(
      outcome.kind === 'rebuilt'
        ? `rebuild: done: generation ${outcome.generation} is current (reads moved within ${outcome.propagationMs} ms); generation ${outcome.left} deleted (${outcome.deleted} keys)\n`
        : `rebuild: done: generation ${outcome.generation} is current; generation ${outcome.left} deleted (${outcome.deleted} keys)\n`,
    );
    return EXIT.ok;
  } catch (error) {
    if (error instanceof LockHeldError) return fail(EXIT.locked, error.message);
    if (error instanceof InsufficientMemoryError) return fail(EXIT.memory, error.message);
    if (error instanceof RebuildRefusedError) return fail(EXIT.failed, `${error.message}; nothing was changed`);
    if (error instanceof FlipRefusedError) return fail(EXIT.failed, error.message);
    if (signal.aborted) return fail(EXIT.interrupted, `stopped (${(signal.reason as Error).message}); run \`npm run rebuild\` again to resume`);
    if (error instanceof StoppedByAbortError) return fail(EXIT.aborted, error.message);
    const message = error instanceof Error ? error.message : String(error);
    return fail(EXIT.failed, command === 'status' ? message : `${message}; run \`npm run rebuild -- ${command}\` again to resume`);
  }
}

async function status(app: INestApplicationContext, json: boolean): Promise<number> {
  const [fields, instances] = await answered(() => Promise.all([app.get(RebuildPointer).read(), app.get(InstanceRegistry).live({ prune: false })]));
  if (json) {
    process.stdout.write(`${JSON.stringify({ ...fields, instances }, null, 2)}\n`);
    return EXIT.ok;
  }
  const lines = [`current generation: ${fields.current ?? 'none yet'}`];
  if (fields.building !== undefined) lines.push(`building generation: ${fields.building} (every running instance writes it too)`);
  if (fields.previous !== undefined) lines.push(`previous generation: ${fields.previous} (still written, to be deleted)`);
  lines.push(fields.lock ? `lock: held by ${fields.lock.owner.command}, process ${fields.lock.owner.pid} on ${fields.lock.owner.host}, since ${fields.lock.owner.startedAt}; expires in ${Math.ceil(fields.lock.expiresInMs / 1000)} s unless renewed` : 'lock: free');
  const state = fields.rebuild;
  if (state) {
    lines.push(`last rebuild: generation ${state.generation}, ${state.phase}, started ${new Date(state.startedAt).toISOString()}, updated ${new Date(state.updatedAt).toISOString()}`);
    if (state.phase === 'replaying' && state.total !== undefined) {
      lines.push(`  ${describe(state.generation, { replayed: state.replayed ?? 0, total: state.total, percent: state.percent ?? 0, eventsPerSecond: state.eventsPerSecond ?? 0, etaSeconds: state.eventsPerSecond ? Math.ceil((state.total - (state.replayed ?? 0)) / state.eventsPerSecond) : undefined })}`);
    }
    if (state.propagationMs !== undefined) lines.push(`  every instance read generation ${state.generation} ${state.propagationMs} ms after the flip`);
    if (state.error) lines.push(`  stopped by: ${state.error}`);
  }
  lines.push(`running instances: ${instances.length}`, ...instances.map((beat) => `  ${describeInstance(beat)}`));
  process.stdout.write(`${lines.join('\n')}\n`);
  return EXIT.ok;
}

function usage(problem: string): number {
  process.stderr.write(`rebuild: ${problem}\n${USAGE}\n`);
  return EXIT.usage;
}

function fail(code: number, message: string): number {
  process.stderr.write(`rebuild: ${message}\n`);
  return code;
}

void main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`rebuild: failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(EXIT.failed);
  },
);
