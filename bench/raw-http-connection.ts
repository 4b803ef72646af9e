// One keep-alive HTTP/1.1 connection on a bare socket, one request at a time: what bench:watch
// holds ten thousand of. A node:http request costs the bench process far more memory and CPU per
// connection; here a request is one write and an answer one parse, timed when its last byte arrives.
import net from 'node:net';

export interface RawAnswer {
  status: number;
  /** Header names in lower case; a repeated header keeps its last value. */
  headers: Record<string, string>;
  body: Buffer;
  /** performance.now() when the answer's last byte was read. */
  at: number;
}

const HEADER_END = Buffer.from('\r\n\r\n');
const EMPTY = Buffer.alloc(0);

export class RawHttpConnection {
  private buffer: Buffer = EMPTY;
  private pending: { resolve: (answer: RawAnswer) => void; reject: (error: Error) => void } | undefined;
  /** Set once the socket fails or closes: every later request rejects with it. */
  private failure: Error | undefined;

  private constructor(private readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.received(chunk));
    socket.on('error', (error) => this.fail(error));
    socket.on('close', () => this.fail(new Error('the server closed the connection')));
  }

  static open(port: number, host = '127.0.0.1'): Promise<RawHttpConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host });
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new RawHttpConnection(socket));
      });
      socket.once('error', reject);
    });
  }

  /** GET `path` with `headers`; resolves with the whole answer, rejects if the connection fails first. */
  get(path: string, headers: Record<string, string>): Promise<RawAnswer> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.pending) return Promise.reject(new Error('a request is already under way on this connection'));
    let head = `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n`;
    for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.socket.write(`${head}\r\n`);
    });
  }

  close(): void {
    this.failure ??= new Error('closed by the client');
    this.socket.destroy();
  }

  private received(chunk: Buffer): void {
    const at = performance.now();
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const headerEnd = this.buffer.indexOf(HEADER_END);
    if (headerEnd === -1) return;
    const lines = this.buffer.toString('latin1', 0, headerEnd).split('\r\n');
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(lines[0])?.[1]);
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    if (!Number.isInteger(status)) return this.fail(new Error(`not an HTTP/1.1 status line: ${lines[0]}`));
    if (headers['transfer-encoding'] !== undefined) return this.fail(new Error(`a ${status} answer with Transfer-Encoding: ${headers['transfer-encoding']}, not a Content-Length`));
    const length = headers['content-length'] === undefined ? 0 : Number(headers['content-length']);
    const bodyStart = headerEnd + HEADER_END.length;
    if (this.buffer.length < bodyStart + length) return;
    const body = this.buffer.subarray(bodyStart, bodyStart + length);
    const rest = this.buffer.subarray(bodyStart + length);
    this.buffer = rest.length === 0 ? EMPTY : Buffer.from(rest);
    const pending = this.pending;
    this.pending = undefined;
    if (!pending) return this.fail(new Error(`an answer (${status}) that no request asked for`));
    pending.resolve({ status, headers, body: Buffer.from(body), at });
  }

  private fail(error: Error): void {
    this.failure ??= error;
    const pending = this.pending;
    this.pending = undefined;
    pending?.reject(error);
    if (!this.socket.destroyed) this.socket.destroy();
  }
}
