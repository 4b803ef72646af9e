import { RedisClusterConfig } from './app-config.js';
import { ConfigError } from './config-error.js';

const HOST_PORT = /^(\[[0-9A-Fa-f:.]+\]|[^\s:/@[\]]+):(\d{1,5})$/;

interface Seed {
  readonly host: string;
  readonly port: number;
  readonly username?: string;
  readonly password?: string;
  readonly tls: boolean;
}

const problem = (detail: string) => new ConfigError(`invalid configuration: REDIS_CLUSTER_NODES ${detail}`);

/**
 * Reads REDIS_CLUSTER_NODES: comma-separated seed nodes, each `host:port` or a `redis://` or
 * `rediss://` URL (`rediss://user:password@host:port`), as REDIS_URL takes them. The scheme and
 * credentials apply to every node the cluster reports, not only to the seeds, so all seeds must
 * agree on them. A cluster has only database 0. Messages never echo a value: it may hold a password.
 */
export function parseClusterNodes(value: string): RedisClusterConfig {
  const entries = value.split(',').map((entry) => entry.trim());
  const seeds = entries.map((entry, index) => {
    if (entry === '') throw problem(`has an empty entry (number ${index + 1})`);
    const seed = /^rediss?:\/\//.test(entry) ? fromUrl(entry) : fromHostPort(entry);
    if (!seed) throw problem(`entry ${index + 1} is neither host:port nor a redis:// or rediss:// URL with host and port`);
    if (seed.port < 1 || seed.port > 65535) throw problem(`entry ${index + 1} has a port outside 1-65535`);
    return seed;
  });
  const [first] = seeds;
  const agree = (seed: Seed) => seed.tls === first.tls && seed.username === first.username && seed.password === first.password;
  if (!seeds.every(agree)) {
    throw problem('entries differ in scheme or credentials; every node of a cluster is reached the same way, so give them once per entry, alike');
  }
  return {
    nodes: seeds.map(({ host, port }) => ({ host, port })),
    ...(first.username !== undefined && { username: first.username }),
    ...(first.password !== undefined && { password: first.password }),
    tls: first.tls,
  };
}

function fromHostPort(entry: string): Seed | undefined {
  const match = HOST_PORT.exec(entry);
  if (!match) return undefined;
  return { host: unbracket(match[1]), port: Number(match[2]), tls: false };
}

function fromUrl(entry: string): Seed | undefined {
  let url: URL;
  try {
    url = new URL(entry);
  } catch {
    return undefined;
  }
  if (url.hostname === '' || url.port === '' || url.search !== '' || url.hash !== '') return undefined;
  if (url.pathname !== '' && url.pathname !== '/' && url.pathname !== '/0') throw problem('names a database other than 0, and a cluster has only database 0');
  return {
    host: unbracket(url.hostname),
    port: Number(url.port),
    ...(url.username !== '' && { username: decodeURIComponent(url.username) }),
    ...(url.password !== '' && { password: decodeURIComponent(url.password) }),
    tls: url.protocol === 'rediss:',
  };
}

const unbracket = (host: string) => (host.startsWith('[') ? host.slice(1, -1) : host);
