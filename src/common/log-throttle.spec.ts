import { LogThrottle } from './log-throttle.js';

describe('LogThrottle', () => {
  it('gives the first call a turn, then one per interval, counting the calls in between', () => {
    let now = 1_000;
    const throttle = new LogThrottle(10_000, () => now);
    expect(throttle.take()).toEqual({ skipped: 0, sinceLastMs: undefined });
    now += 5_000;
    expect(throttle.take()).toBeUndefined();
    now += 4_999;
    expect(throttle.take()).toBeUndefined();
    now += 1;
    expect(throttle.take()).toEqual({ skipped: 2, sinceLastMs: 10_000 });
    now += 60_000;
    expect(throttle.take()).toEqual({ skipped: 0, sinceLastMs: 60_000 });
  });
});
