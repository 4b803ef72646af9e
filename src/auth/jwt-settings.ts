import { createSecretKey, KeyObject } from 'node:crypto';

/** The only algorithm issued and accepted: a token claiming any other is refused. */
export const JWT_ALGORITHM = 'HS256';
export const JWT_ISSUER = 'task-cache';
/** HS256 wants a key of at least its hash's 256 bits; shorter ones can be brute-forced offline. */
export const JWT_SECRET_MIN_LENGTH = 32;

/** The HMAC key of a secret that `assertAuthConfig` has accepted. */
export function jwtKey(secret: string): KeyObject {
  return createSecretKey(Buffer.from(secret, 'utf8'));
}
