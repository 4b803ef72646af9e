import { IncomingMessage, ServerResponse } from 'node:http';
import {
  BadRequestException,
  Injectable,
  NestMiddleware,
  PayloadTooLargeException,
  UnsupportedMediaTypeException,
} from '@nestjs/common';

/** Requests with a body here are small JSON documents (credentials); anything bigger is refused. */
export const JSON_BODY_LIMIT_BYTES = 4096;

/**
 * Parses a small JSON body into `req.body`, for the few routes that take one. The app has no
 * global body parser, so no other request pays for reading a body.
 */
@Injectable()
export class JsonBodyMiddleware implements NestMiddleware {
  async use(req: IncomingMessage & { body?: unknown }, _res: ServerResponse, next: () => void): Promise<void> {
    const type = req.headers['content-type']?.split(';', 1)[0].trim().toLowerCase();
    if (type !== 'application/json') throw new UnsupportedMediaTypeException('Content-Type must be application/json');
    if (Number(req.headers['content-length']) > JSON_BODY_LIMIT_BYTES) throw tooLarge();
    const text = (await readBody(req)).toString('utf8');
    try {
      req.body = JSON.parse(text);
    } catch {
      throw new BadRequestException('Malformed JSON body');
    }
    next();
  }
}

const tooLarge = () => new PayloadTooLargeException(`Body larger than ${JSON_BODY_LIMIT_BYTES} bytes`);

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    // Past the limit the rest is read and dropped rather than the socket destroyed, so the
    // client still receives its 413.
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= JSON_BODY_LIMIT_BYTES) chunks.push(chunk);
    });
    req.on('end', () => (size > JSON_BODY_LIMIT_BYTES ? reject(tooLarge()) : resolve(Buffer.concat(chunks))));
    req.on('error', reject);
  });
}
