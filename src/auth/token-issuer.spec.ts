import { decodeProtectedHeader, jwtVerify } from 'jose';
import { AuthConfig } from '../config/app-config.js';
import { ConfigError } from '../config/config-error.js';
import { InvalidCredentialsError } from './invalid-credentials.error.js';
import { TokenIssuer } from './token-issuer.js';

const SECRET = 'a-jwt-secret-of-at-least-32-characters';

function config(auth: Partial<AuthConfig>): AuthConfig {
  return { tokens: [], keys: new Map(), jwtTtlSeconds: 3600, ...auth };
}

describe('TokenIssuer', () => {
  const issuer = new TokenIssuer(config({ keys: new Map([['key-1', 'secret-1'], ['key-2', 'secret-2']]), jwtSecret: SECRET, jwtTtlSeconds: 900 }));

  it('issues an HS256 JWT for the key, signed with the secret, that expires after the configured lifetime', async () => {
    const token = await issuer.issue('key-2', 'secret-2');
    expect(decodeProtectedHeader(token).alg).toBe('HS256');
    const { payload } = await jwtVerify(token, new TextEncoder().encode(SECRET), { algorithms: ['HS256'] });
    expect(payload).toMatchObject({ sub: 'key-2', iss: 'task-cache' });
    expect(payload.exp! - payload.iat!).toBe(900);
    expect(Math.abs(payload.iat! - Date.now() / 1000)).toBeLessThan(5);
  });

  it("refuses a key's secret for another key, a wrong secret and an unknown keyId", async () => {
    await expect(issuer.issue('key-1', 'secret-2')).rejects.toBeInstanceOf(InvalidCredentialsError);
    await expect(issuer.issue('key-1', 'secret-1x')).rejects.toBeInstanceOf(InvalidCredentialsError);
    await expect(issuer.issue('key-1', '')).rejects.toBeInstanceOf(InvalidCredentialsError);
    await expect(issuer.issue('key-3', 'secret-1')).rejects.toBeInstanceOf(InvalidCredentialsError);
  });

  it('is enabled only when access keys are configured', () => {
    expect(issuer.enabled).toBe(true);
    expect(new TokenIssuer(config({ tokens: ['t'] })).enabled).toBe(false);
    expect(new TokenIssuer(config({ tokens: ['t'], jwtSecret: SECRET })).enabled).toBe(false);
  });

  it('issues nothing when disabled', async () => {
    await expect(new TokenIssuer(config({ tokens: ['t'] })).issue('key-1', 'secret-1')).rejects.toBeInstanceOf(InvalidCredentialsError);
  });

  it('refuses keys without a JWT secret, or with a short one', () => {
    expect(() => new TokenIssuer(config({ keys: new Map([['k', 's']]) }))).toThrow(ConfigError);
    expect(() => new TokenIssuer(config({ keys: new Map([['k', 's']]), jwtSecret: 'short' }))).toThrow(/at least 32/);
  });
});
