import { REDACTED, redactSecrets } from './redact-secrets.js';

describe('redactSecrets', () => {
  it('returns what holds no secret as it is, without copying', () => {
    const fields = { context: 'DeadLetters', topic: 'task-updates', partition: 3, offset: '42', nested: { count: 1 } };
    expect(redactSecrets(fields)).toBe(fields);
    expect(redactSecrets('text')).toBe('text');
    expect(redactSecrets(null)).toBeNull();
  });

  it('censors secret-named fields at any depth, whatever their case, and never changes what was logged', () => {
    const config = { auth: { tokens: ['t-1'], jwtSecret: 'j', jwtTtlSeconds: 3600 }, redis: { url: 'redis://u:p@h:6379', cluster: { nodes: [], password: 'pw' } } };
    const logged = { a: { b: { config } }, headers: { Authorization: 'Bearer x', 'X-Authorization': 'y', Accept: '*/*' } };
    const before = structuredClone(logged);
    const out = redactSecrets(logged);
    expect(out).toEqual({
      a: { b: { config: { auth: { tokens: REDACTED, jwtSecret: REDACTED, jwtTtlSeconds: 3600 }, redis: { url: `redis://${REDACTED}@h:6379`, cluster: { nodes: [], password: REDACTED } } } } },
      headers: { Authorization: REDACTED, 'X-Authorization': REDACTED, Accept: '*/*' },
    });
    expect(logged).toEqual(before);
    // Only what holds a secret is copied.
    expect(out.a.b.config.redis.cluster.nodes).toBe(config.redis.cluster.nodes);
  });

  it('copies an error holding a secret as an error of its class, with its message and stack', () => {
    const error = Object.assign(new TypeError('refused'), { request: { headers: { cookie: 'c' } } });
    const out = redactSecrets({ err: error }).err;
    expect(out).not.toBe(error);
    expect(out).toBeInstanceOf(TypeError);
    expect([out.message, out.stack]).toEqual([error.message, error.stack]);
    expect(out.request.headers.cookie).toBe(REDACTED);
    expect(error.request.headers.cookie).toBe('c');
  });

  it('writes what lies deeper than it searches as [Object], and searches an object referred to twice once', () => {
    let deep: Record<string, unknown> = { password: 'p' };
    for (let level = 0; level < 10; level += 1) deep = { inner: deep };
    let at: unknown = redactSecrets({ deep }).deep;
    // The line is level 0, `deep` level 1: what it holds at level 10 is not searched.
    for (let level = 0; level < 8; level += 1) at = (at as { inner: unknown }).inner;
    expect(at).toEqual({ inner: '[Object]' });
    const shared = { token: 't' };
    const out = redactSecrets({ one: shared, two: shared });
    expect(out.one).toEqual({ token: REDACTED });
    expect(out.two).toBe(out.one);
  });

  it('censors within arrays, leaves buffers alone, and ends on cycles', () => {
    const cyclic: Record<string, unknown> = { token: 'abc' };
    cyclic.self = cyclic;
    const bytes = Buffer.from('token');
    const out = redactSecrets({ list: [{ password: 'p' }, 'plain'], bytes, cyclic });
    expect(out.list).toEqual([{ password: REDACTED }, 'plain']);
    expect(out.bytes).toBe(bytes);
    expect(out.cyclic).toEqual({ token: REDACTED, self: '[Circular]' });
  });
});
