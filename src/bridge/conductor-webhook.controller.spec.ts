import { jest } from '@jest/globals';
import { BridgeConfig } from '../config/app-config.js';
import { TaskCacheMetrics } from '../metrics/task-cache-metrics.js';
import { BridgeAnswerTimeoutError, BridgeBusyError, BridgeUnavailableError } from './bridge-errors.js';
import { ConductorWebhookController } from './conductor-webhook.controller.js';
import { TaskRereader } from './task-rereader.js';
import { WorkflowReconciler } from './workflow-reconciler.js';

const CONFIG = { answerTimeoutMs: 4000 } as BridgeConfig;
const reconciler = { seen: () => undefined, workflowNotified: () => Promise.resolve() } as unknown as WorkflowReconciler;

describe('ConductorWebhookController', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  const controller = (notified: TaskRereader['notified']) => new ConductorWebhookController({ notified } as TaskRereader, reconciler, CONFIG, new TaskCacheMetrics({}));

  it('refuses a notification the queue cannot take at once, leaving no timer behind', async () => {
    const busy = controller(() => {
      throw new BridgeBusyError(5);
    });
    await expect(busy.task({ taskId: 't1' })).rejects.toBeInstanceOf(BridgeBusyError);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('answers a retryable timeout past BRIDGE_ANSWER_TIMEOUT_MS, and lets the pass know nobody waits', async () => {
    let signal: AbortSignal | undefined;
    const slow = controller((_taskId, given) => {
      signal = given;
      return new Promise(() => undefined);
    });
    const answer = slow.task({ taskId: 't1' });
    const settled = expect(answer).rejects.toBeInstanceOf(BridgeAnswerTimeoutError);
    await jest.advanceTimersByTimeAsync(4000);
    await settled;
    expect(signal?.aborted).toBe(true);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('answers anything unexpected as a retryable 503, never a 500 Conductor would not send again', async () => {
    const failing = controller(() => Promise.reject(new TypeError('boom')));
    const error = await failing.task({ taskId: 't1' }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(BridgeUnavailableError);
    expect((error as BridgeUnavailableError).retryable).toBe(true);
  });
});
