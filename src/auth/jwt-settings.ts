import { createSecretKey, KeyObject } from 'node:crypto';
import { ConfigError } from '../config/config-error.js';

/** The only algorithm issued and accepted: a token claiming any other is refused. */
export const JWT_ALGORITHM = 'HS256';
export const JWT_ISSUER = 'task-cache';
/** HS256 wants a key of at least its hash's 256 bits; shorter ones can be brute-forced offline. */
export const JWT_SECRET_MIN_LENGTH = 32;

export function jwtKey(secret: string): KeyObject {
  // Config validation already enforces this for the environment; this holds for any AppConfig.
  if (secret.length < JWT_SECRET_MIN_LENGTH) {
    throw new ConfigError(`invalid configuration: AUTH_JWT_SECRET must be at least ${JWT_SECRET_MIN_LENGTH} characters long`);
  }
  return createSecretKey(Buffer.from(secret, 'utf8'));
}
