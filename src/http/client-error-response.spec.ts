import { hostname } from 'node:os';
import { Duplex } from 'node:stream';
import { jest } from '@jest/globals';
import { sendClientErrorResponse } from './client-error-response.js';

/** A socket that records what would go on the wire, and whether it was ended and destroyed. */
function socket(state: { writable?: boolean; inFlightHeadersSent?: boolean } = {}) {
  const written: Buffer[] = [];
  const fake = {
    writable: state.writable ?? true,
    _httpMessage: state.inFlightHeadersSent === undefined ? null : { headersSent: state.inFlightHeadersSent },
    end: jest.fn((chunk: Buffer, callback: () => void) => {
      written.push(chunk);
      callback();
    }),
    destroy: jest.fn(),
  };
  return { socket: fake as unknown as Duplex, fake, wire: () => Buffer.concat(written).toString('utf8') };
}

const parserError = (code: string) => Object.assign(new Error(`Parse Error: ${code}`), { code, rawPacket: Buffer.from('GET / HTTP/1.1\r\nX-Authorization: secret-token') });

function parse(wire: string) {
  const [head, body] = wire.split('\r\n\r\n');
  const [statusLine, ...headers] = head.split('\r\n');
  return { statusLine, headers, body: JSON.parse(body) as unknown, bodyLength: Buffer.byteLength(body) };
}

describe('sendClientErrorResponse', () => {
  it.each([
    ['HPE_HEADER_OVERFLOW', 'HTTP/1.1 431 Request Header Fields Too Large', { status: 431, message: 'Request header fields too large', retryable: false }],
    ['HPE_CHUNK_EXTENSIONS_OVERFLOW', 'HTTP/1.1 413 Payload Too Large', { status: 413, message: 'Chunk extensions too large', retryable: false }],
    ['ERR_HTTP_REQUEST_TIMEOUT', 'HTTP/1.1 408 Request Timeout', { status: 408, message: 'Request not received in time', retryable: true }],
    ['HPE_INVALID_METHOD', 'HTTP/1.1 400 Bad Request', { status: 400, message: 'Malformed HTTP request (HPE_INVALID_METHOD)', retryable: false }],
    ['HPE_INVALID_CONTENT_LENGTH', 'HTTP/1.1 400 Bad Request', { status: 400, message: 'Malformed HTTP request (HPE_INVALID_CONTENT_LENGTH)', retryable: false }],
    ['SOMETHING else', 'HTTP/1.1 400 Bad Request', { status: 400, message: 'Malformed HTTP request', retryable: false }],
  ])('answers %s with a complete ErrorResponse and closes the connection', (code, statusLine, expected) => {
    const { socket: s, fake, wire } = socket();
    sendClientErrorResponse(parserError(code), s);
    const response = parse(wire());
    expect(response.statusLine).toBe(statusLine);
    expect(response.headers).toEqual(['Content-Type: application/json', `Content-Length: ${response.bodyLength}`, 'Connection: close']);
    expect(response.body).toStrictEqual({ ...expected, instance: hostname() });
    expect(fake.end).toHaveBeenCalledTimes(1);
    expect(fake.destroy).toHaveBeenCalledTimes(1);
  });

  it('never repeats the request it could not parse', () => {
    const { socket: s, wire } = socket();
    sendClientErrorResponse(parserError('HPE_INVALID_HEADER_TOKEN'), s);
    expect(wire()).not.toContain('secret-token');
  });

  it.each([
    ['the peer reset the connection', parserError('ECONNRESET'), {}],
    ['the socket no longer takes writes', parserError('HPE_INVALID_METHOD'), { writable: false }],
    ['a response on it has begun', parserError('HPE_INVALID_METHOD'), { inFlightHeadersSent: true }],
  ])('writes nothing and destroys the socket when %s', (_case, error, state) => {
    const { socket: s, fake } = socket(state);
    sendClientErrorResponse(error, s);
    expect(fake.end).not.toHaveBeenCalled();
    expect(fake.destroy).toHaveBeenCalledTimes(1);
  });

  it('still answers when a response in flight has not begun', () => {
    const { socket: s, fake } = socket({ inFlightHeadersSent: false });
    sendClientErrorResponse(parserError('HPE_INVALID_METHOD'), s);
    expect(fake.end).toHaveBeenCalledTimes(1);
  });
});
