import { KeyObject, randomBytes, timingSafeEqual } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { SignJWT } from 'jose';
import { AuthConfig } from '../config/app-config.js';
import { TaskCacheMetrics } from '../metrics/task-cache-metrics.js';
import { assertAuthConfig } from './assert-auth-config.js';
import { InvalidCredentialsError } from './invalid-credentials.error.js';
import { JWT_ALGORITHM, JWT_ISSUER, jwtKey } from './jwt-settings.js';
import { secretDigest } from './secret-digest.js';

/**
 * Exchanges an access key (`AUTH_KEYS`) for a JWT, as Orkes does at POST /api/token. Enabled only
 * when keys are configured, which requires a JWT secret.
 */
@Injectable()
export class TokenIssuer {
  readonly enabled: boolean;
  private readonly secretDigests: ReadonlyMap<string, Buffer>;
  private readonly key: KeyObject | undefined;
  private readonly ttlSeconds: number;
  /** Compared against for an unknown keyId, so that answer takes as long as a wrong secret's. */
  private readonly unknownKeyDigest = secretDigest(randomBytes(32).toString('hex'));

  constructor(
    config: AuthConfig,
    private readonly metrics: TaskCacheMetrics = new TaskCacheMetrics({}),
  ) {
    assertAuthConfig(config);
    const { keys, jwtSecret, jwtTtlSeconds } = config;
    this.secretDigests = new Map([...keys].map(([keyId, secret]) => [keyId, secretDigest(secret)]));
    this.key = jwtSecret ? jwtKey(jwtSecret) : undefined;
    this.enabled = keys.size > 0;
    this.ttlSeconds = jwtTtlSeconds;
  }

  /** A signed JWT for the key; throws `InvalidCredentialsError` (counted) unless keyId and keySecret match. */
  async issue(keyId: string, keySecret: string): Promise<string> {
    const expected = this.secretDigests.get(keyId);
    const matches = timingSafeEqual(expected ?? this.unknownKeyDigest, secretDigest(keySecret));
    if (!matches || expected === undefined || !this.key) {
      this.metrics.authFailures.inc({ reason: 'invalid_credentials' });
      throw new InvalidCredentialsError();
    }
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({})
      .setProtectedHeader({ alg: JWT_ALGORITHM, typ: 'JWT' })
      .setIssuer(JWT_ISSUER)
      .setSubject(keyId)
      .setIssuedAt(now)
      .setExpirationTime(now + this.ttlSeconds)
      .sign(this.key);
  }
}
