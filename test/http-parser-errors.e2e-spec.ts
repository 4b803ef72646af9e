import { connect } from 'node:net';
import { hostname } from 'node:os';
import { INestApplication } from '@nestjs/common';
import { createApp } from '../src/app.factory.js';
import { TEST_TOKEN, testConfig } from './support/infra.js';
import { untilConsuming } from './support/ingesting-app.js';

interface WireResponse {
  statusLine: string;
  headers: Map<string, string>;
  body: Buffer;
}

/**
 * Sends bytes as they are, with no HTTP client to correct them, and reads until the server
 * closes the connection: the answer to a request Node's parser refuses is its last.
 */
function exchange(port: number, request: Buffer): Promise<WireResponse> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect(port, '127.0.0.1', () => socket.write(request));
    socket.on('data', (chunk) => chunks.push(chunk));
    // A server that closes before reading all of a long request may reset the connection.
    socket.on('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNRESET' || error.code === 'EPIPE' ? undefined : reject(error)));
    socket.on('close', () => {
      const wire = Buffer.concat(chunks);
      const headEnd = wire.indexOf('\r\n\r\n');
      if (headEnd === -1) return reject(new Error(`no complete response head: ${JSON.stringify(wire.toString('latin1'))}`));
      const [statusLine, ...lines] = wire.subarray(0, headEnd).toString('latin1').split('\r\n');
      const headers = new Map(lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
      resolve({ statusLine, headers, body: wire.subarray(headEnd + 4) });
    });
  });
}

const bytes = (...parts: (string | Buffer)[]) => Buffer.concat(parts.map((part) => (typeof part === 'string' ? Buffer.from(part, 'latin1') : part)));

describe("requests Node's HTTP parser refuses, answered as ErrorResponses", () => {
  let app: INestApplication;
  let port: number;

  beforeAll(async () => {
    app = await createApp(testConfig('parser-errors'));
    await app.listen(0);
    await untilConsuming(app);
    port = app.getHttpServer().address().port;
  });

  afterAll(async () => {
    await app?.close();
  });

  it.each([
    ['a raw NUL byte in the path', 400, 'Malformed HTTP request (HPE_INVALID_URL)', bytes('GET /tasks/a', Buffer.from([0]), 'b HTTP/1.1\r\nHost: x\r\n\r\n')],
    ['a raw non-ASCII byte in the path', 400, 'Malformed HTTP request (HPE_INVALID_URL)', bytes('GET /tasks/caf', Buffer.from([0xc3, 0xa9]), ' HTTP/1.1\r\nHost: x\r\n\r\n')],
    ['a lowercase method', 400, 'Malformed HTTP request (HPE_INVALID_METHOD)', bytes('get /tasks/t-1 HTTP/1.1\r\nHost: x\r\n\r\n')],
    ['Content-Length: abc', 400, 'Malformed HTTP request (HPE_INVALID_CONTENT_LENGTH)', bytes('POST /api/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: abc\r\n\r\n{}')],
    ['a 60 KB header', 431, 'Request header fields too large', bytes(`GET /tasks/t-1 HTTP/1.1\r\nHost: x\r\nX-Authorization: ${TEST_TOKEN}\r\nX-Filler: ${'f'.repeat(60 * 1024)}\r\n\r\n`)],
  ] as const)('answers %s with a complete JSON %i and closes the connection', async (_case, status, message, request) => {
    const response = await exchange(port, request);
    expect(response.statusLine).toMatch(new RegExp(`^HTTP/1\\.1 ${status} [A-Za-z ]+$`));
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(response.headers.get('connection')).toBe('close');
    expect(Number(response.headers.get('content-length'))).toBe(response.body.length);
    const body = JSON.parse(response.body.toString('utf8')) as Record<string, unknown>;
    expect(body).toStrictEqual({ status, message, instance: hostname(), retryable: false });
    expect(response.body.toString('latin1')).not.toContain(TEST_TOKEN);
  });

  it('still answers the well-formed requests of other connections', async () => {
    const response = await exchange(port, bytes(`GET /tasks/never-seen HTTP/1.1\r\nHost: x\r\nX-Authorization: ${TEST_TOKEN}\r\nConnection: close\r\n\r\n`));
    expect(response.statusLine).toBe('HTTP/1.1 404 Not Found');
  });
});
