import { Logger } from '@nestjs/common';
import { sleep } from '../common/sleep.js';
import { LifecycleConfig } from '../config/app-config.js';

/** What a graceful shutdown does, in this order (main.ts binds them to the app; specs to fakes). */
export interface ShutdownSteps {
  /** Readiness answers 503 and every response carries `Connection: close`, from now on. */
  beginDrain(): void;
  /**
   * Stops accepting connections, closes idle ones, and resolves once the requests in flight have
   * been answered; those still open after `graceMs` are cut.
   */
  closeHttp(graceMs: number): Promise<void>;
  /** Nest's shutdown hooks: the consumer commits and leaves its group, connections close. */
  closeApp(): Promise<void>;
}

/**
 * The answer to SIGTERM, so that a rolling restart behind a load balancer fails no request:
 *  1. drain: readiness turns 503 at once, and the instance keeps serving for SHUTDOWN_DRAIN_MS,
 *     long enough for the balancer's health check to notice, with `Connection: close` on every
 *     response so that clients and the balancer open their next connection elsewhere;
 *  2. it stops accepting connections, closes the idle ones and answers the requests in flight
 *     (cut after a third of what the drain leaves of the bound; step 3 takes at most half, so
 *     that closing Redis and Kafka still fits);
 *  3. Nest's shutdown hooks: the consumer finishes its batch, commits and leaves the group;
 *     Redis and Kafka connections close;
 *  4. exit 0. Past SHUTDOWN_TIMEOUT_MS, counted from the signal, or on a failure: exit 1.
 * SIGINT (Ctrl-C at a terminal) skips the wait of step 1: nothing balances a terminal's process.
 * A second signal changes nothing.
 */
export class GracefulShutdown {
  private readonly logger = new Logger('Shutdown');
  private started = false;

  constructor(
    private readonly steps: ShutdownSteps,
    private readonly config: Pick<LifecycleConfig, 'shutdownTimeoutMs' | 'shutdownDrainMs'>,
    private readonly exit: (code: number) => void,
  ) {}

  /** The signal handler. */
  onSignal(signal: NodeJS.Signals): void {
    if (this.started) return;
    this.started = true;
    const { shutdownTimeoutMs } = this.config;
    const bound = setTimeout(() => {
      this.logger.error(`shutdown did not finish within ${shutdownTimeoutMs} ms; exiting`);
      this.exit(1);
    }, shutdownTimeoutMs);
    bound.unref?.();
    this.run(signal).then(
      () => {
        clearTimeout(bound);
        this.logger.log('shut down cleanly; exiting');
        this.exit(0);
      },
      (error: unknown) => {
        clearTimeout(bound);
        this.logger.error({ err: error }, `shutdown failed: ${error instanceof Error ? error.message : String(error)}`);
        this.exit(1);
      },
    );
  }

  private async run(signal: NodeJS.Signals): Promise<void> {
    const drainMs = signal === 'SIGTERM' ? this.config.shutdownDrainMs : 0;
    this.steps.beginDrain();
    this.logger.log(`${signal} received; not ready, serving with Connection: close for ${drainMs} ms`);
    if (drainMs > 0) await sleep(drainMs);
    const graceMs = Math.floor((this.config.shutdownTimeoutMs - drainMs) / 3);
    await this.steps.closeHttp(graceMs);
    this.logger.log('HTTP server closed; stopping ingest and closing connections');
    await this.steps.closeApp();
  }
}
