import { createHash } from 'node:crypto';

/**
 * A fixed-length digest of a secret, to compare with `timingSafeEqual`: comparing digests rather
 * than the secrets themselves keeps the time taken independent of the secrets' lengths.
 */
export function secretDigest(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}
