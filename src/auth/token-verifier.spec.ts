import { jest } from '@jest/globals';
import { SignJWT, UnsecuredJWT } from 'jose';
import { AuthConfig } from '../config/app-config.js';
import { ConfigError } from '../config/config-error.js';
import { TOKEN_MAX_LENGTH } from './token-length.js';
import { TokenIssuer } from './token-issuer.js';
import { tokenOf, VERIFIED_JWT_CACHE_LIMITS, TokenVerifier } from './token-verifier.js';
import { UnauthenticatedError } from './unauthenticated.error.js';
import { TaskCacheMetrics } from '../metrics/task-cache-metrics.js';

const SECRET = 'a-jwt-secret-of-at-least-32-characters';
const OTHER_SECRET = 'another-secret-of-at-least-32-characters';

function config(auth: Partial<AuthConfig>): AuthConfig {
  return { tokens: [], keys: new Map(), jwtTtlSeconds: 3600, ...auth };
}

async function rejection(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(UnauthenticatedError);
  return (error as UnauthenticatedError).code;
}

const secretKey = (secret: string) => new TextEncoder().encode(secret);
const now = () => Math.floor(Date.now() / 1000);

function jwt(claims: { exp?: number; iss?: string } = {}, alg = 'HS256', secret = SECRET): Promise<string> {
  const token = new SignJWT({}).setProtectedHeader({ alg }).setSubject('key-1').setIssuedAt();
  token.setIssuer(claims.iss ?? 'task-cache');
  if (claims.exp !== undefined) token.setExpirationTime(claims.exp);
  return token.sign(secretKey(secret));
}

describe('TokenVerifier with static tokens', () => {
  const verifier = new TokenVerifier(config({ tokens: ['token-one', 'token-two'] }));

  it('accepts every configured token', async () => {
    await expect(verifier.verify('token-one')).resolves.toBeUndefined();
    await expect(verifier.verify('token-two')).resolves.toBeUndefined();
  });

  it('refuses any other token, including prefixes and extensions of a configured one', async () => {
    for (const token of ['token-three', 'token-on', 'token-one-', 'TOKEN-ONE', ' token-one']) {
      expect(await rejection(verifier.verify(token))).toBe('TOKEN_INVALID');
    }
  });

  it('calls an absent or empty token missing', async () => {
    expect(await rejection(verifier.verify(undefined))).toBe('TOKEN_MISSING');
    expect(await rejection(verifier.verify(''))).toBe('TOKEN_MISSING');
  });

  it('refuses JWTs when no JWT secret is configured', async () => {
    expect(await rejection(verifier.verify(await jwt({ exp: now() + 60 })))).toBe('TOKEN_INVALID');
  });
});

describe('TokenVerifier with JWTs', () => {
  const auth = { tokens: [], keys: new Map([['key-1', 'key-secret']]), jwtSecret: SECRET, jwtTtlSeconds: 600 };

  afterEach(() => jest.useRealTimers());

  it('accepts a token issued by TokenIssuer', async () => {
    const token = await new TokenIssuer(config(auth)).issue('key-1', 'key-secret');
    await expect(new TokenVerifier(config(auth)).verify(token)).resolves.toBeUndefined();
  });

  it('refuses a token for a key that is no longer configured, and accepts any subject without keys', async () => {
    const token = await new TokenIssuer(config(auth)).issue('key-1', 'key-secret');
    const keyRemoved = { ...auth, keys: new Map([['key-2', 'other-secret']]) };
    expect(await rejection(new TokenVerifier(config(keyRemoved)).verify(token))).toBe('TOKEN_INVALID');
    const secretOnly = { ...auth, tokens: ['static'], keys: new Map<string, string>() };
    await expect(new TokenVerifier(config(secretOnly)).verify(token)).resolves.toBeUndefined();
  });

  it('refuses an expired token as expired', async () => {
    const verifier = new TokenVerifier(config(auth));
    expect(await rejection(verifier.verify(await jwt({ exp: now() - 5 })))).toBe('TOKEN_EXPIRED');
  });

  it('refuses a token signed with another secret', async () => {
    const verifier = new TokenVerifier(config(auth));
    expect(await rejection(verifier.verify(await jwt({ exp: now() + 60 }, 'HS256', OTHER_SECRET)))).toBe('TOKEN_INVALID');
  });

  it('refuses a token whose signature was altered', async () => {
    const token = await jwt({ exp: now() + 60 });
    const [header, payload, signature] = token.split('.');
    const forged = `${header}.${payload}.${signature.startsWith('A') ? 'B' : 'A'}${signature.slice(1)}`;
    expect(await rejection(new TokenVerifier(config(auth)).verify(forged))).toBe('TOKEN_INVALID');
  });

  it('refuses a token whose claims were altered under the original signature', async () => {
    const [header, , signature] = (await jwt({ exp: now() + 60 })).split('.');
    const payload = Buffer.from(JSON.stringify({ sub: 'admin', iss: 'task-cache', exp: now() + 99999 })).toString('base64url');
    expect(await rejection(new TokenVerifier(config(auth)).verify(`${header}.${payload}.${signature}`))).toBe('TOKEN_INVALID');
  });

  it('refuses another algorithm, even with the right secret, and unsigned tokens', async () => {
    const verifier = new TokenVerifier(config(auth));
    expect(await rejection(verifier.verify(await jwt({ exp: now() + 60 }, 'HS512')))).toBe('TOKEN_INVALID');
    const unsigned = new UnsecuredJWT({}).setIssuer('task-cache').setExpirationTime(now() + 60).encode();
    expect(await rejection(verifier.verify(unsigned))).toBe('TOKEN_INVALID');
  });

  it('refuses a token without expiry, from another issuer, or malformed', async () => {
    const verifier = new TokenVerifier(config(auth));
    expect(await rejection(verifier.verify(await jwt()))).toBe('TOKEN_INVALID');
    expect(await rejection(verifier.verify(await jwt({ exp: now() + 60, iss: 'someone-else' })))).toBe('TOKEN_INVALID');
    for (const malformed of ['a.b.c', 'not-a-jwt', '..', 'eyJhbGciOiJIUzI1NiJ9..']) {
      expect(await rejection(verifier.verify(malformed))).toBe('TOKEN_INVALID');
    }
  });

  it('stops accepting a token it has already verified once the token expires', async () => {
    jest.useFakeTimers({ now: Date.now(), doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    const verifier = new TokenVerifier(config(auth));
    const token = await jwt({ exp: now() + 60 });
    await expect(verifier.verify(token)).resolves.toBeUndefined();
    await expect(verifier.verify(token)).resolves.toBeUndefined();
    jest.setSystemTime(Date.now() + 61_000);
    expect(await rejection(verifier.verify(token))).toBe('TOKEN_EXPIRED');
    expect(await rejection(verifier.verify(token))).toBe('TOKEN_EXPIRED');
  });

  it('accepts static tokens alongside JWTs', async () => {
    const verifier = new TokenVerifier(config({ ...auth, tokens: ['static'] }));
    await expect(verifier.verify('static')).resolves.toBeUndefined();
    await expect(verifier.verify(await jwt({ exp: now() + 60 }))).resolves.toBeUndefined();
  });
});

describe('TokenVerifier against other spellings of a valid JWT', () => {
  const auth = { tokens: ['static'], keys: new Map<string, string>(), jwtSecret: SECRET, jwtTtlSeconds: 600 };
  let token: string;
  let header: string;
  let payload: string;
  let signature: string;

  beforeAll(async () => {
    token = await jwt({ exp: now() + 600 });
    [header, payload, signature] = token.split('.');
  });

  it('accepts the token as issued', async () => {
    await expect(new TokenVerifier(config(auth)).verify(token)).resolves.toBeUndefined();
  });

  it.each([1, 2, 3, 16])('refuses it with %i "=" appended', async (count) => {
    expect(await rejection(new TokenVerifier(config(auth)).verify(`${token}${'='.repeat(count)}`))).toBe('TOKEN_INVALID');
  });

  it.each(['!', '~', '*', '%', '=', ' ', '+', '/'])('refuses it with %j inserted in the signature', async (character) => {
    const verifier = new TokenVerifier(config(auth));
    for (const at of [0, 10, signature.length]) {
      const altered = `${header}.${payload}.${signature.slice(0, at)}${character}${signature.slice(at)}`;
      expect([at, await rejection(verifier.verify(altered))]).toEqual([at, 'TOKEN_INVALID']);
    }
  });

  it.each(['header', 'payload'])('refuses it with a character inserted in the %s', async (part) => {
    const verifier = new TokenVerifier(config(auth));
    const altered = part === 'header' ? `${header}!.${payload}.${signature}` : `${header}.${payload}~.${signature}`;
    expect(await rejection(verifier.verify(altered))).toBe('TOKEN_INVALID');
  });

  it('refuses a last signature character that decodes to the same bytes (non-canonical trailing bits)', async () => {
    // 32 signature bytes take 43 characters of 6 bits; the last one carries 4 bits and 2 unused ones.
    const last = signature.at(-1)!;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const sameBytes = [...alphabet].filter((c) => c !== last && alphabet.indexOf(c) >> 2 === alphabet.indexOf(last) >> 2);
    expect(sameBytes).toHaveLength(3);
    const verifier = new TokenVerifier(config(auth));
    for (const c of sameBytes) {
      const altered = `${header}.${payload}.${signature.slice(0, -1)}${c}`;
      expect(Buffer.from(altered.split('.')[2], 'base64url').equals(Buffer.from(signature, 'base64url'))).toBe(true);
      expect([c, await rejection(verifier.verify(altered))]).toEqual([c, 'TOKEN_INVALID']);
    }
  });

  it('refuses more or fewer than three segments, and empty ones', async () => {
    const verifier = new TokenVerifier(config(auth));
    for (const altered of [`${token}.`, `${token}.${signature}`, `${header}.${payload}`, `${header}..${signature}`, `.${payload}.${signature}`]) {
      expect(await rejection(verifier.verify(altered))).toBe('TOKEN_INVALID');
    }
  });

  it('refuses a token longer than the bound before looking at it, even a static one', async () => {
    const verifier = new TokenVerifier(config({ ...auth, tokens: ['static'] }));
    expect(await rejection(verifier.verify(`${token}${'='.repeat(8000)}`))).toBe('TOKEN_INVALID');
    expect(await rejection(verifier.verify('x'.repeat(TOKEN_MAX_LENGTH + 1)))).toBe('TOKEN_INVALID');
  });

  it('caches no variant: only the canonical token takes an entry', async () => {
    const verifier = new TokenVerifier(config(auth));
    await verifier.verify(token);
    for (const altered of [`${token}=`, `${token}==`, `${header}.${payload}.!${signature}`, `${header}.${payload}.${signature.slice(0, -1)}${signature.at(-1) === 'A' ? 'B' : 'A'}`]) {
      await verifier.verify(altered).catch(() => undefined);
    }
    expect(verifier.verifiedJwtCacheUsage.entries).toBe(1);
  });

  it('accepts a JWT up to the maximum length, and refuses one longer', async () => {
    const verifier = new TokenVerifier(config(auth));
    const longest = await jwtOfAtMost(TOKEN_MAX_LENGTH);
    expect(longest.length).toBeGreaterThan(TOKEN_MAX_LENGTH - 4);
    await expect(verifier.verify(longest)).resolves.toBeUndefined();
    const over = await jwtOfAtMost(TOKEN_MAX_LENGTH + 8);
    expect(over.length).toBeGreaterThan(TOKEN_MAX_LENGTH);
    expect(await rejection(verifier.verify(over))).toBe('TOKEN_INVALID');
  });
});

/** The longest valid JWT of at most `maxLength` characters, grown by a padding claim. */
async function jwtOfAtMost(maxLength: number, subject = 'key-1'): Promise<string> {
  const padded = (padding: number) =>
    new SignJWT({ pad: 'p'.repeat(padding) })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('task-cache')
      .setSubject(subject)
      .setExpirationTime(now() + 600)
      .sign(secretKey(SECRET));
  // Three payload bytes take four characters; step back from the estimate until it fits.
  for (let padding = Math.ceil(((maxLength - (await padded(0)).length) * 3) / 4); ; padding--) {
    const token = await padded(padding);
    if (token.length <= maxLength) return token;
  }
}

describe('the verified-JWT cache of TokenVerifier', () => {
  const auth = { tokens: ['static'], keys: new Map<string, string>(), jwtSecret: SECRET, jwtTtlSeconds: 600 };

  it('holds its byte budget under a flood of distinct, validly signed tokens of the maximum length', async () => {
    const verifier = new TokenVerifier(config(auth));
    let flood = 0;
    for (let i = 0; flood < VERIFIED_JWT_CACHE_LIMITS.maxBytes * 2; i++) {
      const token = await jwtOfAtMost(TOKEN_MAX_LENGTH, `flood-${i}`);
      await verifier.verify(token);
      flood += token.length;
      expect(verifier.verifiedJwtCacheUsage.bytes).toBeLessThanOrEqual(VERIFIED_JWT_CACHE_LIMITS.maxBytes);
    }
    const usage = verifier.verifiedJwtCacheUsage;
    expect(usage.bytes).toBeGreaterThan(VERIFIED_JWT_CACHE_LIMITS.maxBytes - 2 * TOKEN_MAX_LENGTH);
    expect(usage.entries).toBeLessThan(VERIFIED_JWT_CACHE_LIMITS.maxBytes / (TOKEN_MAX_LENGTH - 200));
  });
});

describe('TokenVerifier configuration', () => {
  it('refuses a static token longer than any request may present', () => {
    expect(() => new TokenVerifier(config({ tokens: ['x'.repeat(TOKEN_MAX_LENGTH + 1)] }))).toThrow(/auth.tokens holds a token longer than 4096 characters/);
    expect(() => new TokenVerifier(config({ tokens: ['x'.repeat(TOKEN_MAX_LENGTH)] }))).not.toThrow();
  });

  it('refuses a configuration with no way to authenticate', () => {
    expect(() => new TokenVerifier(config({}))).toThrow(ConfigError);
    expect(() => new TokenVerifier(config({}))).toThrow(/no way to authenticate/);
    // As from the environment: a secret without AUTH_KEYS only adds JWTs to a configured way in.
    expect(() => new TokenVerifier(config({ jwtSecret: SECRET }))).toThrow(/no way to authenticate/);
  });

  it('refuses a JWT secret shorter than 32 characters', () => {
    expect(() => new TokenVerifier(config({ jwtSecret: 'x'.repeat(31) }))).toThrow(/at least 32 characters/);
  });
});

describe('tokenOf', () => {
  it('reads X-Authorization as it is', () => {
    expect(tokenOf({ 'x-authorization': 'abc' })).toBe('abc');
  });

  it('reads a Bearer token from Authorization, whatever the scheme case', () => {
    expect(tokenOf({ authorization: 'Bearer abc' })).toBe('abc');
    expect(tokenOf({ authorization: 'bearer abc' })).toBe('abc');
  });

  it('prefers X-Authorization when both are sent', () => {
    expect(tokenOf({ 'x-authorization': 'conductor', authorization: 'Bearer other' })).toBe('conductor');
  });

  it('finds no token in other schemes, an empty header or none', () => {
    expect(tokenOf({ authorization: 'Basic YTpi' })).toBeUndefined();
    expect(tokenOf({ authorization: 'Bearer' })).toBeUndefined();
    expect(tokenOf({ authorization: 'Bearer a b' })).toBeUndefined();
    expect(tokenOf({ 'x-authorization': '' })).toBeUndefined();
    expect(tokenOf({})).toBeUndefined();
  });
});

describe('auth failure metrics', () => {
  async function failures(metrics: TaskCacheMetrics): Promise<Record<string, number>> {
    const { values } = await metrics.authFailures.get();
    return Object.fromEntries(values.map((value) => [value.labels.reason, value.value]));
  }

  it('counts each refusal once, by reason, and nothing for an accepted token', async () => {
    const metrics = new TaskCacheMetrics({});
    const verifier = new TokenVerifier(config({ tokens: ['token-one'], jwtSecret: SECRET }), metrics);
    await verifier.verify('token-one');
    await rejection(verifier.verify(undefined));
    await rejection(verifier.verify('wrong'));
    await rejection(verifier.verify('x'.repeat(TOKEN_MAX_LENGTH + 1)));
    await rejection(verifier.verify(await jwt({ exp: now() - 10 })));
    await rejection(verifier.verify(await jwt({ exp: now() + 60 }, 'HS256', OTHER_SECRET)));
    expect(await failures(metrics)).toEqual({ token_missing: 1, token_invalid: 3, token_expired: 1 });
  });

  it('counts refused credentials at POST /api/token as invalid_credentials', async () => {
    const metrics = new TaskCacheMetrics({});
    const issuer = new TokenIssuer(config({ keys: new Map([['key-1', 'secret-1']]), jwtSecret: SECRET }), metrics);
    await issuer.issue('key-1', 'secret-1');
    await expect(issuer.issue('key-1', 'wrong')).rejects.toThrow();
    await expect(issuer.issue('unknown', 'secret-1')).rejects.toThrow();
    expect(await failures(metrics)).toEqual({ invalid_credentials: 2 });
  });
});
