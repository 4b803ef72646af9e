import { jest } from '@jest/globals';
import { SignJWT, UnsecuredJWT } from 'jose';
import { AppConfig, AuthConfig } from '../config/app-config.js';
import { ConfigError } from '../config/config-error.js';
import { TokenIssuer } from './token-issuer.js';
import { tokenOf, TokenVerifier } from './token-verifier.js';
import { UnauthenticatedError } from './unauthenticated.error.js';

const SECRET = 'a-jwt-secret-of-at-least-32-characters';
const OTHER_SECRET = 'another-secret-of-at-least-32-characters';

function config(auth: Partial<AuthConfig>): AppConfig {
  return { auth: { tokens: [], keys: new Map(), jwtTtlSeconds: 3600, ...auth } } as unknown as AppConfig;
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

describe('TokenVerifier configuration', () => {
  it('refuses a configuration with no way to authenticate', () => {
    expect(() => new TokenVerifier(config({}))).toThrow(ConfigError);
    expect(() => new TokenVerifier(config({}))).toThrow(/no way to authenticate/);
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
