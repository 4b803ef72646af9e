import { KeyObject, timingSafeEqual } from 'node:crypto';
import { IncomingHttpHeaders } from 'node:http';
import { Injectable } from '@nestjs/common';
import { errors, jwtVerify } from 'jose';
import { AuthConfig } from '../config/app-config.js';
import { TaskCacheMetrics } from '../metrics/task-cache-metrics.js';
import { assertAuthConfig } from './assert-auth-config.js';
import { isCanonicalCompactJws } from './compact-jws.js';
import { JWT_ALGORITHM, JWT_ISSUER, jwtKey } from './jwt-settings.js';
import { secretDigest } from './secret-digest.js';
import { TOKEN_MAX_LENGTH } from './token-length.js';
import { UnauthenticatedCode, UnauthenticatedError } from './unauthenticated.error.js';
import { VerifiedJwtCache, VerifiedJwtCacheLimits } from './verified-jwt-cache.js';

/**
 * Enough for every client of a large deployment: 10,000 issued tokens of about 200 characters
 * count about 3 MiB. Past either bound the oldest entries make room.
 */
export const VERIFIED_JWT_CACHE_LIMITS: VerifiedJwtCacheLimits = { maxEntries: 10_000, maxBytes: 4 * 1024 * 1024 };

/**
 * Decides whether a request may read. The one implementation of token checking: the global guard
 * and the fast read route both call it.
 *
 * Accepts the static tokens of the configuration (compared in constant time, every one of them,
 * so timing tells neither whether nor which one matched) and, when a JWT secret is configured,
 * HS256 JWTs from POST /api/token until they expire. A JWT's signature is verified once: after
 * that it is remembered with its expiry, so repeated reads with it cost one map lookup instead of
 * an HMAC (figures: bench/RESULTS.md). Only tokens with a valid signature, in canonical form, are
 * remembered, so the cache can be filled neither with guesses nor with other spellings of one
 * token. Tokens longer than TOKEN_MAX_LENGTH are refused
 * before anything else is done with them. Every refusal is counted by its reason.
 */
@Injectable()
export class TokenVerifier {
  private readonly staticDigests: readonly Buffer[];
  private readonly jwtKey: KeyObject | undefined;
  /** The keyIds a JWT's subject must be one of; empty when no keys are configured. */
  private readonly keyIds: ReadonlySet<string>;
  private readonly verifiedJwts = new VerifiedJwtCache(VERIFIED_JWT_CACHE_LIMITS);

  constructor(
    config: AuthConfig,
    private readonly metrics: TaskCacheMetrics = new TaskCacheMetrics({}),
  ) {
    assertAuthConfig(config);
    this.staticDigests = config.tokens.map(secretDigest);
    this.jwtKey = config.jwtSecret ? jwtKey(config.jwtSecret) : undefined;
    this.keyIds = new Set(config.keys.keys());
  }

  /** Resolves if the request carries an accepted token; rejects with `UnauthenticatedError` if not. */
  verifyRequest(headers: IncomingHttpHeaders): Promise<void> {
    return this.verify(tokenOf(headers));
  }

  async verify(token: string | undefined): Promise<void> {
    if (!token) throw this.refusal('TOKEN_MISSING');
    if (token.length > TOKEN_MAX_LENGTH) throw this.refusal('TOKEN_INVALID');
    const expiresAt = this.verifiedJwts.get(token);
    if (expiresAt !== undefined) {
      if (Date.now() < expiresAt) return;
      this.verifiedJwts.delete(token);
      throw this.refusal('TOKEN_EXPIRED');
    }
    if (this.isStaticToken(token)) return;
    if (!this.jwtKey || !isCanonicalCompactJws(token)) throw this.refusal('TOKEN_INVALID');
    this.verifiedJwts.set(token, await this.verifyJwt(token, this.jwtKey));
  }

  /** The error a refused request gets, counted by its reason. */
  private refusal(code: UnauthenticatedCode): UnauthenticatedError {
    this.metrics.authFailures.inc({ reason: code.toLowerCase() });
    return new UnauthenticatedError(code);
  }

  /** How much the verified-JWT cache holds now. */
  get verifiedJwtCacheUsage(): { readonly entries: number; readonly bytes: number } {
    return { entries: this.verifiedJwts.entries, bytes: this.verifiedJwts.bytes };
  }

  private isStaticToken(token: string): boolean {
    if (this.staticDigests.length === 0) return false;
    const digest = secretDigest(token);
    let matched = false;
    for (const known of this.staticDigests) matched = timingSafeEqual(known, digest) || matched;
    return matched;
  }

  /** The JWT's expiry in epoch milliseconds, once its signature, algorithm and claims hold. */
  private async verifyJwt(token: string, key: KeyObject): Promise<number> {
    try {
      const { payload } = await jwtVerify(token, key, {
        algorithms: [JWT_ALGORITHM],
        issuer: JWT_ISSUER,
        requiredClaims: ['exp'],
      });
      // A token issued for a key that has since been removed from AUTH_KEYS stops working.
      if (this.keyIds.size > 0 && !this.keyIds.has(payload.sub ?? '')) throw this.refusal('TOKEN_INVALID');
      return payload.exp! * 1000;
    } catch (error) {
      if (error instanceof UnauthenticatedError) throw error;
      throw this.refusal(error instanceof errors.JWTExpired ? 'TOKEN_EXPIRED' : 'TOKEN_INVALID');
    }
  }
}

const BEARER = /^Bearer\s+(\S+)\s*$/i;

/** `X-Authorization: <token>` (Conductor's header) or else `Authorization: Bearer <token>`. */
export function tokenOf(headers: IncomingHttpHeaders): string | undefined {
  // Node has already trimmed header values; an empty X-Authorization counts as absent.
  const conductor = headers['x-authorization'];
  if (conductor) return conductor as string;
  return headers.authorization ? BEARER.exec(headers.authorization)?.[1] : undefined;
}
