/** What a secret is written as. */
export const REDACTED = '[Redacted]';

/**
 * Names of the fields that hold secrets, compared case-insensitively: request headers that carry
 * credentials (the HTTP contract's Authorization and X-Authorization, cookies) and a raw request's
 * header list; AuthConfig's tokens, keys and JWT secret, a token request's keySecret, an issued
 * token, a cluster node's password; the environment's AUTH_* variables.
 */
const SECRET_NAMES = new Set(
  [
    'authorization',
    'x-authorization',
    'cookie',
    'set-cookie',
    'rawHeaders',
    'tokens',
    'keys',
    'jwtSecret',
    'keySecret',
    'token',
    'secret',
    'password',
    'AUTH_TOKENS',
    'AUTH_KEYS',
    'AUTH_JWT_SECRET',
  ].map((name) => name.toLowerCase()),
);
/** Names of the fields that may hold Redis URLs with credentials (`redis://user:password@host`): kept, without the credentials. */
const URL_NAMES = new Set(['url', 'redis_url', 'redis_cluster_nodes']);
/**
 * How deep a logged object is searched; an object deeper than that is written as `"[Object]"`
 * (pino itself writes objects at any depth). Far deeper than anything the service logs, and a
 * bound on the work and the recursion of a line.
 */
const MAX_DEPTH = 10;
/** A reference back to an object being searched: pino writes it so, never the object again. */
const CIRCULAR = '[Circular]';
const TOO_DEEP = '[Object]';

/**
 * `value` with every field named like a secret written as `[Redacted]`, and the credentials of
 * Redis URLs removed, at any depth. What is logged is never changed: an object that holds a secret
 * is copied (with its prototype, so an error keeps its class, message and stack), and one that
 * holds none is returned as it is, as is the whole value when nothing is found.
 *
 * By name rather than by pino's `redact` paths: a path names one depth (`*.headers.cookie`), so
 * covering every depth takes a path per depth and name, and pino then tries every such path on
 * every field of every line, whatever the line holds; this looks at what a line holds, once.
 */
export function redactSecrets<T>(value: T): T {
  return new Search().censored(value, 0) as T;
}

/** One line's search: each object is searched once, however often it is referred to. */
class Search {
  private readonly done = new Map<object, unknown>();
  private readonly within = new Set<object>();

  censored(value: unknown, depth: number): unknown {
    if (typeof value !== 'object' || value === null || ArrayBuffer.isView(value)) return value;
    if (this.within.has(value)) return CIRCULAR;
    if (this.done.has(value)) return this.done.get(value);
    if (depth >= MAX_DEPTH) return TOO_DEEP;
    this.within.add(value);
    let changes: Map<string, unknown> | undefined;
    for (const key of Object.keys(value)) {
      const field = (value as Record<string, unknown>)[key];
      const next = this.censoredField(key, field, depth);
      if (next !== field) (changes ??= new Map()).set(key, next);
    }
    this.within.delete(value);
    const result = changes ? copyWith(value, changes) : value;
    this.done.set(value, result);
    return result;
  }

  private censoredField(key: string, field: unknown, depth: number): unknown {
    const name = key.toLowerCase();
    if (SECRET_NAMES.has(name)) return field === undefined || field === null ? field : REDACTED;
    if (URL_NAMES.has(name) && typeof field === 'string') return field.replace(/\/\/[^/@\s,]*@/g, `//${REDACTED}@`);
    return this.censored(field, depth + 1);
  }
}

function copyWith(value: object, changes: ReadonlyMap<string, unknown>): object {
  if (Array.isArray(value)) {
    const copy: unknown[] = [...value];
    for (const [index, next] of changes) copy[Number(index)] = next;
    return copy;
  }
  const descriptors = Object.getOwnPropertyDescriptors(value);
  for (const [key, next] of changes) descriptors[key] = { value: next, enumerable: true, writable: true, configurable: true };
  return Object.create(Object.getPrototypeOf(value) as object | null, descriptors) as object;
}
