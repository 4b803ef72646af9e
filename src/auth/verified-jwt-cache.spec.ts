import { VERIFIED_JWT_ENTRY_OVERHEAD_BYTES, VerifiedJwtCache } from './verified-jwt-cache.js';

const entry = (length: number, tag: string) => tag.padEnd(length, '.');
const cost = (length: number) => length + VERIFIED_JWT_ENTRY_OVERHEAD_BYTES;

describe('VerifiedJwtCache', () => {
  it('remembers an expiry by token and forgets it on delete, counting its bytes', () => {
    const cache = new VerifiedJwtCache({ maxEntries: 10, maxBytes: 10_000 });
    cache.set('a.b.c', 123);
    expect([cache.get('a.b.c'), cache.entries, cache.bytes]).toEqual([123, 1, cost(5)]);
    cache.delete('a.b.c');
    cache.delete('a.b.c');
    expect([cache.get('a.b.c'), cache.entries, cache.bytes]).toEqual([undefined, 0, 0]);
  });

  it('counts a token set twice once', () => {
    const cache = new VerifiedJwtCache({ maxEntries: 10, maxBytes: 10_000 });
    cache.set('a.b.c', 1);
    cache.set('a.b.c', 2);
    expect([cache.get('a.b.c'), cache.entries, cache.bytes]).toEqual([2, 1, cost(5)]);
  });

  it('evicts the oldest entries when the count bound is reached', () => {
    const cache = new VerifiedJwtCache({ maxEntries: 3, maxBytes: 1_000_000 });
    for (const token of ['t1', 't2', 't3', 't4']) cache.set(token, 1);
    expect([cache.get('t1'), cache.get('t2'), cache.get('t4'), cache.entries]).toEqual([undefined, 1, 1, 3]);
  });

  it('evicts the oldest entries until a new one fits the byte bound, and never exceeds it', () => {
    const maxBytes = 3 * cost(1000);
    const cache = new VerifiedJwtCache({ maxEntries: 1000, maxBytes });
    for (const tag of ['a', 'b', 'c']) cache.set(entry(1000, tag), 1);
    expect([cache.entries, cache.bytes]).toEqual([3, maxBytes]);
    cache.set(entry(2000, 'd'), 1);
    expect([cache.get(entry(1000, 'a')), cache.get(entry(1000, 'b')), cache.get(entry(1000, 'c'))]).toEqual([undefined, undefined, 1]);
    expect([cache.entries, cache.bytes]).toEqual([2, cost(1000) + cost(2000)]);
    for (let i = 0; i < 500; i++) {
      cache.set(entry(100 + ((i * 37) % 3000), `flood-${i}`), 1);
      expect(cache.bytes).toBeLessThanOrEqual(maxBytes);
    }
  });

  it('does not remember a token larger than the whole budget, nor evict anything for it', () => {
    const cache = new VerifiedJwtCache({ maxEntries: 10, maxBytes: cost(100) });
    cache.set(entry(100, 'kept'), 1);
    cache.set(entry(101, 'huge'), 1);
    expect([cache.get(entry(100, 'kept')), cache.get(entry(101, 'huge')), cache.bytes]).toEqual([1, undefined, cost(100)]);
  });
});
