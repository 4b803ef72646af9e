import { ServerResponse, STATUS_CODES } from 'node:http';
import { Duplex } from 'node:stream';
import { BadRequestException, HttpException, PayloadTooLargeException, RequestTimeoutException } from '@nestjs/common';
import { toErrorResponse } from './to-error-response.js';

/** Node's codes for the parser errors that have a status of their own; every other one is a 400. */
const CLIENT_ERRORS: Readonly<Record<string, () => HttpException>> = {
  HPE_HEADER_OVERFLOW: () => new HttpException('Request header fields too large', 431),
  HPE_CHUNK_EXTENSIONS_OVERFLOW: () => new PayloadTooLargeException('Chunk extensions too large'),
  ERR_HTTP_REQUEST_TIMEOUT: () => new RequestTimeoutException('Request not received in time'),
};

/**
 * The node:http server's `clientError` listener: answers what Node's HTTP parser refuses (a
 * malformed request line or header, a header section over the size limit, a request too slow to
 * arrive) with an ErrorResponse, as every other error is answered, instead of Node's bare status
 * line. The request never reached a route, so the answer is written on the socket itself, and
 * the connection is closed after it: the parser cannot go on from where it failed.
 *
 * Nothing is written when the peer has gone (ECONNRESET), the socket no longer takes writes, or
 * a response on it has already begun (a pipelined request failed while an earlier one was
 * answered): bytes after a partial response would corrupt it. Node's own default makes the same
 * checks. Nothing is logged: the error carries the raw request bytes, which may hold a token.
 */
export function sendClientErrorResponse(error: NodeJS.ErrnoException, socket: Duplex): void {
  const inFlight = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (error.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
    socket.destroy();
    return;
  }
  const response = toErrorResponse(asHttpException(error));
  const body = Buffer.from(JSON.stringify(response));
  const head = [
    `HTTP/1.1 ${response.status} ${STATUS_CODES[response.status]}`,
    'Content-Type: application/json',
    `Content-Length: ${body.length}`,
    'Connection: close',
    '',
    '',
  ].join('\r\n');
  socket.end(Buffer.concat([Buffer.from(head, 'latin1'), body]), () => socket.destroy());
}

function asHttpException(error: NodeJS.ErrnoException): HttpException {
  const known = error.code !== undefined && Object.hasOwn(CLIENT_ERRORS, error.code) ? CLIENT_ERRORS[error.code] : undefined;
  if (known) return known();
  // The code names what was wrong (HPE_INVALID_METHOD, HPE_INVALID_CONTENT_LENGTH, ...); the
  // error's other fields may quote the request, so only a code of the expected form is repeated.
  const code = error.code !== undefined && /^HPE_[A-Z_]{1,40}$/.test(error.code) ? ` (${error.code})` : '';
  return new BadRequestException(`Malformed HTTP request${code}`);
}
