import { Server } from 'node:http';
import { HttpConfig } from '../config/app-config.js';

/**
 * Time a client has to send a request's headers, and its whole request. A client that trickles
 * bytes to hold a connection open (slowloris) is answered 408 and cut off after these. Behind
 * HAProxy the balancer's own `timeout http-request` (deploy/haproxy/haproxy.cfg) is the same 10 s,
 * so the service never waits on a client the balancer still waits on.
 */
export const HEADERS_TIMEOUT_MS = 10_000;
export const REQUEST_TIMEOUT_MS = 30_000;
/** How often Node checks the two bounds above (its default, 30 s, would let them run 30 s over). */
const CONNECTIONS_CHECKING_INTERVAL_MS = 1000;

/**
 * Connection lifetimes of the HTTP server. Keep-alive: an idle connection stays open for
 * HTTP_KEEP_ALIVE_TIMEOUT_MS (65 s by default), longer than the idle timeout of any client or
 * balancer in front (HAProxy here, AWS ALB's 60 s), so that the peer closes an idle connection
 * first. With Node's default of 5 s, clients whose own idle timeout was close to it sometimes sent
 * a request on a connection the service was closing at that moment, and saw ECONNRESET.
 */
export function applyConnectionTimeouts(server: Server, config: HttpConfig): void {
  server.keepAliveTimeout = config.keepAliveTimeoutMs;
  server.headersTimeout = HEADERS_TIMEOUT_MS;
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  // Read when the server starts listening, so it must be set before.
  (server as Server & { connectionsCheckingInterval: number }).connectionsCheckingInterval = CONNECTIONS_CHECKING_INTERVAL_MS;
}
