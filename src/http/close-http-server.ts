import { Server } from 'node:http';

/**
 * Stops accepting connections, closes the idle ones (keep-alive connections between requests),
 * and resolves once every other connection has ended: its request in flight answered, and closed
 * after it, since a draining instance answers with `Connection: close`. Connections still open
 * after `graceMs` (a request still arriving, a client that does not read its answer) are cut, so
 * that the shutdown goes on: once closing, Node no longer enforces its request timeouts.
 */
export async function closeHttpServer(server: Server, graceMs: number): Promise<void> {
  if (!server.listening) return;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const cut = setTimeout(() => server.closeAllConnections(), graceMs);
  await closed;
  clearTimeout(cut);
}
