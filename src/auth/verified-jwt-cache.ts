/** What a cache entry is counted as beyond its token's characters: the map slot, string header, expiry. */
export const VERIFIED_JWT_ENTRY_OVERHEAD_BYTES = 128;

export interface VerifiedJwtCacheLimits {
  readonly maxEntries: number;
  /** Counted as each token's length (tokens are ASCII) plus the per-entry overhead. */
  readonly maxBytes: number;
}

/**
 * Verified JWTs and their expiry, bounded by count and by bytes: past either bound the oldest
 * entries make room. The bytes bound keeps long tokens from making the count bound cost more
 * memory than the service means to spend on it.
 */
export class VerifiedJwtCache {
  private readonly expiries = new Map<string, number>();
  private usedBytes = 0;

  constructor(private readonly limits: VerifiedJwtCacheLimits) {}

  /** The token's expiry in epoch milliseconds, if it was verified and is still remembered. */
  get(token: string): number | undefined {
    return this.expiries.get(token);
  }

  set(token: string, expiresAt: number): void {
    const bytes = entryBytes(token);
    if (bytes > this.limits.maxBytes) return;
    this.delete(token);
    while (this.expiries.size >= this.limits.maxEntries || this.usedBytes + bytes > this.limits.maxBytes) {
      this.delete(this.expiries.keys().next().value!);
    }
    this.expiries.set(token, expiresAt);
    this.usedBytes += bytes;
  }

  delete(token: string): void {
    if (this.expiries.delete(token)) this.usedBytes -= entryBytes(token);
  }

  get entries(): number {
    return this.expiries.size;
  }

  get bytes(): number {
    return this.usedBytes;
  }
}

const entryBytes = (token: string) => token.length + VERIFIED_JWT_ENTRY_OVERHEAD_BYTES;
