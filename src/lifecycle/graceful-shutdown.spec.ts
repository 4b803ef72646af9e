import { jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { GracefulShutdown, ShutdownSteps } from './graceful-shutdown.js';

const elapse = (ms: number) => jest.advanceTimersByTimeAsync(ms);

/** Steps that record when each ran (on fake time) and finish when the test says so. */
class FakeSteps implements ShutdownSteps {
  readonly calls: string[] = [];
  draining = false;
  graceMs: number | undefined;
  finishHttp: () => void = () => undefined;
  finishApp: () => void = () => undefined;
  failApp: (error: Error) => void = () => undefined;
  private readonly started = Date.now();

  beginDrain(): void {
    this.draining = true;
    this.calls.push(`drain@${Date.now() - this.started}`);
  }

  closeHttp(graceMs: number): Promise<void> {
    this.graceMs = graceMs;
    this.calls.push(`closeHttp@${Date.now() - this.started}`);
    return new Promise((resolve) => (this.finishHttp = resolve));
  }

  closeApp(): Promise<void> {
    this.calls.push(`closeApp@${Date.now() - this.started}`);
    return new Promise((resolve, reject) => {
      this.finishApp = resolve;
      this.failApp = reject;
    });
  }
}

describe('GracefulShutdown', () => {
  let steps: FakeSteps;
  let exits: number[];
  let shutdown: GracefulShutdown;

  beforeAll(() => Logger.overrideLogger(false));

  beforeEach(() => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    steps = new FakeSteps();
    exits = [];
    shutdown = new GracefulShutdown(steps, { shutdownTimeoutMs: 15_000, shutdownDrainMs: 5000 }, (code) => exits.push(code));
  });

  afterEach(() => jest.useRealTimers());

  it('on SIGTERM drains at once, keeps serving for the drain, then closes HTTP, then the app, then exits 0', async () => {
    shutdown.onSignal('SIGTERM');
    expect(steps.draining).toBe(true);
    expect(steps.calls).toEqual(['drain@0']);

    await elapse(4999);
    expect(steps.calls).toEqual(['drain@0']); // still serving: nothing closed yet
    await elapse(1);
    expect(steps.calls).toEqual(['drain@0', 'closeHttp@5000']);
    // A third of what the drain leaves of the bound: the consumer's stop takes at most half, and
    // what is left closes the connections.
    expect(steps.graceMs).toBe(3333);

    await elapse(300);
    expect(steps.calls).toHaveLength(2); // the app waits for the requests in flight
    steps.finishHttp();
    await elapse(0);
    expect(steps.calls).toEqual(['drain@0', 'closeHttp@5000', 'closeApp@5300']);
    expect(exits).toEqual([]);

    steps.finishApp();
    await elapse(0);
    expect(exits).toEqual([0]);
    await elapse(20_000);
    expect(exits).toEqual([0]); // the bound was cleared
  });

  it('on SIGINT does not wait: nothing balances a terminal', async () => {
    shutdown.onSignal('SIGINT');
    await elapse(0);
    expect(steps.calls).toEqual(['drain@0', 'closeHttp@0']);
    expect(steps.graceMs).toBe(5000);
  });

  it('ignores a second signal', async () => {
    shutdown.onSignal('SIGTERM');
    shutdown.onSignal('SIGINT');
    shutdown.onSignal('SIGTERM');
    await elapse(5000);
    expect(steps.calls).toEqual(['drain@0', 'closeHttp@5000']);
  });

  it('exits 1 once the bound has passed, counted from the signal', async () => {
    shutdown.onSignal('SIGTERM');
    await elapse(5000);
    steps.finishHttp();
    await elapse(9999);
    expect(exits).toEqual([]);
    await elapse(1);
    expect(exits).toEqual([1]);
  });

  it('exits 1 when a step fails', async () => {
    shutdown.onSignal('SIGTERM');
    await elapse(5000);
    steps.finishHttp();
    await elapse(0);
    steps.failApp(new Error('redis quit failed'));
    await elapse(0);
    expect(exits).toEqual([1]);
  });

  it('with no drain configured, closes at once', async () => {
    shutdown = new GracefulShutdown(steps, { shutdownTimeoutMs: 15_000, shutdownDrainMs: 0 }, (code) => exits.push(code));
    shutdown.onSignal('SIGTERM');
    await elapse(0);
    expect(steps.calls).toEqual(['drain@0', 'closeHttp@0']);
  });
});
