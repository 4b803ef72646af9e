import { once } from 'node:events';
import { createServer, Server, Socket, connect } from 'node:net';

/**
 * Forwards a local port to a target host:port. Lets a suite make Kafka unreachable at the address
 * the service was given, then reachable, without touching the shared broker.
 */
export class TcpProxy {
  private readonly sockets = new Set<Socket>();
  private readonly server: Server;

  private constructor(targetHost: string, targetPort: number) {
    this.server = createServer((client) => {
      const upstream = connect(targetPort, targetHost);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        socket.on('error', () => undefined);
      }
      client.pipe(upstream);
      upstream.pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
  }

  static async listen(port: number, target: string): Promise<TcpProxy> {
    const [host, targetPort] = target.split(':');
    const proxy = new TcpProxy(host, Number(targetPort));
    proxy.server.listen(port, '127.0.0.1');
    await once(proxy.server, 'listening');
    return proxy;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    this.server.close();
    await once(this.server, 'close');
  }
}
