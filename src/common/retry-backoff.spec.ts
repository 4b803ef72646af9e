import { RetryBackoff } from './retry-backoff.js';

describe('RetryBackoff', () => {
  it('doubles from the initial wait up to the cap', () => {
    const top = new RetryBackoff(100, 1000, () => 1);
    expect(Array.from({ length: 7 }, () => top.next())).toEqual([100, 200, 400, 800, 1000, 1000, 1000]);
  });

  it('draws each wait from the upper half of its step', () => {
    const bottom = new RetryBackoff(100, 1000, () => 0);
    expect(Array.from({ length: 6 }, () => bottom.next())).toEqual([50, 100, 200, 400, 500, 500]);
  });

  it('counts attempts and starts over after reset', () => {
    const backoff = new RetryBackoff(100, 1000, () => 1);
    backoff.next();
    backoff.next();
    expect(backoff.attempts).toBe(2);
    backoff.reset();
    expect(backoff.next()).toBe(100);
  });

  it('stays at the cap however long the outage', () => {
    const backoff = new RetryBackoff(100, 2000, () => 1);
    for (let attempt = 0; attempt < 1000; attempt += 1) backoff.next();
    expect(backoff.next()).toBe(2000);
  });
});
