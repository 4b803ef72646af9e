import { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';
import type { DrainState } from '../lifecycle/drain-state.js';

/**
 * A route answered on the bare node:http server, in front of the framework.
 *
 * Why there is one: the task read (`TaskReadRoute`) is the hot path, and Express's and Nest's
 * per-request layers cost more than the read itself (figures: bench/RESULTS.md, "Design
 * measurements"). A front route keeps the framework's contract by sharing its parts rather than
 * copying them: the same `TokenVerifier` as the global guard and the same `toErrorResponse` as the
 * exception filter, so auth and error mapping each still have one implementation. Every other
 * request reaches Express and Nest unchanged. This is the one statement of that reason; other
 * places point here.
 */
export interface FrontRoute {
  /** Takes the request and answers it (true), or leaves it untouched to the framework (false). Never throws. */
  handle(req: IncomingMessage, res: ServerResponse): boolean;
}

/**
 * Puts `route` in front of the server's one request listener (Express, under Nest). Requests the
 * route does not take reach Express unchanged, with every Nest route, guard and filter. While the
 * instance drains, every response, the route's and the framework's, carries `Connection: close`:
 * the client (a load balancer) opens its next connection elsewhere. Per request that costs one
 * boolean check.
 */
export function mountInFront(server: Server, route: FrontRoute, drain: Pick<DrainState, 'draining'>): void {
  const listeners = server.listeners('request') as RequestListener[];
  if (listeners.length !== 1) throw new Error(`expected one request listener, found ${listeners.length}`);
  const [framework] = listeners;
  server.removeListener('request', framework);
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (drain.draining) res.setHeader('Connection', 'close');
    if (!route.handle(req, res)) framework(req, res);
  });
}
