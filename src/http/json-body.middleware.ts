import { IncomingMessage, ServerResponse } from 'node:http';
import {
  BadRequestException,
  Injectable,
  NestMiddleware,
  PayloadTooLargeException,
  UnsupportedMediaTypeException,
} from '@nestjs/common';

/** POST /api/token's body is a small JSON document (credentials); anything bigger is refused. */
export const JSON_BODY_LIMIT_BYTES = 4096;
/**
 * Deeper documents are refused. The credentials body is flat, and validation (class-transformer)
 * recurses into every level: 1,500 levels, which fit in 4096 bytes, overflowed its stack.
 */
export const JSON_BODY_MAX_DEPTH = 32;

const [QUOTE, BACKSLASH, OPEN_BRACE, CLOSE_BRACE, OPEN_BRACKET, CLOSE_BRACKET] = [...'"\\{}[]'].map((c) => c.charCodeAt(0));

/**
 * Parses a small JSON body into `req.body`, for the few routes that take one. The app has no
 * global body parser, so no other request pays for reading a body.
 */
@Injectable()
export class JsonBodyMiddleware implements NestMiddleware {
  async use(req: IncomingMessage & { body?: unknown }, _res: ServerResponse, next: () => void): Promise<void> {
    req.body = await readJsonBody(req, JSON_BODY_LIMIT_BYTES);
    next();
  }
}

/**
 * Reads and parses a JSON request body of at most `limitBytes`: 415 for another Content-Type, 413
 * past the limit, 400 for malformed JSON or one nested deeper than `JSON_BODY_MAX_DEPTH`.
 */
export async function readJsonBody(req: IncomingMessage, limitBytes: number): Promise<unknown> {
  const type = req.headers['content-type']?.split(';', 1)[0].trim().toLowerCase();
  if (type !== 'application/json') throw new UnsupportedMediaTypeException('Content-Type must be application/json');
  if (Number(req.headers['content-length']) > limitBytes) throw tooLarge(limitBytes);
  const text = (await readBody(req, limitBytes)).toString('utf8');
  // Before parsing: JSON.parse of megabytes of `[[[[` holds the event loop for most of a second.
  if (nestedDeeperThan(text, JSON_BODY_MAX_DEPTH)) {
    throw new BadRequestException(`JSON body nested deeper than ${JSON_BODY_MAX_DEPTH} levels`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new BadRequestException('Malformed JSON body');
  }
}

/**
 * Whether JSON text nests objects and arrays deeper than `maxDepth` (on text that is not JSON, a
 * guess; it is refused either way). One pass over the characters with a counter, no recursion, so
 * no document can exhaust the stack here.
 */
export function nestedDeeperThan(json: string, maxDepth: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < json.length; i++) {
    const c = json.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) {
      inString = true;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > maxDepth) return true;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
    }
  }
  return false;
}

const tooLarge = (limitBytes: number) => new PayloadTooLargeException(`Body larger than ${limitBytes} bytes`);

function readBody(req: IncomingMessage, limitBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    // Past the limit the rest is read and dropped rather than the socket destroyed, so the
    // client still receives its 413.
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limitBytes) chunks.push(chunk);
    });
    req.on('end', () => (size > limitBytes ? reject(tooLarge(limitBytes)) : resolve(Buffer.concat(chunks))));
    req.on('error', reject);
  });
}
