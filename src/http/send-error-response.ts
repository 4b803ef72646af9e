import { IncomingMessage, ServerResponse } from 'node:http';
import { Logger } from '@nestjs/common';
import { toErrorResponse } from './to-error-response.js';

const logger = new Logger('HttpErrors');

/**
 * Answers a failed request with its ErrorResponse. The exception filter and the fast read route
 * both end here, so every error leaves the service the same way: JSON, never HTML or a stack.
 * Only the unexpected (500) is logged, with its stack under `err`; the message logged names the
 * route, never headers, which may carry tokens. Returns the status answered.
 */
export function sendErrorResponse(req: IncomingMessage, res: ServerResponse, error: unknown): number {
  const body = toErrorResponse(error);
  if (body.status === 500) {
    const path = (req.url ?? '').split('?', 1)[0];
    logger.error({ err: error }, `${req.method} ${path} failed: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (res.headersSent) {
    // Part of a response is out already and cannot be corrected: cut it short so the client sees a failure.
    res.destroy();
    return body.status;
  }
  const bytes = Buffer.from(JSON.stringify(body));
  res.writeHead(body.status, { 'Content-Type': 'application/json', 'Content-Length': bytes.length });
  res.end(bytes);
  return body.status;
}
