import { Server } from 'node:http';
import request from 'supertest';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  /** The body exactly as it came off the wire. */
  body: Buffer;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: unknown;
}

/** Sends one request and keeps the body as bytes, so tests can compare it byte for byte. */
export async function send(
  server: Server,
  method: 'get' | 'head' | 'post' | 'delete',
  path: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<RawResponse> {
  let pending = request(server)[method](path);
  for (const [name, value] of Object.entries(headers)) pending = pending.set(name, value);
  if (body !== undefined) pending = pending.send(body);
  const response = await pending.buffer(true).parse((res, done) => {
    const chunks: Buffer[] = [];
    res.on('data', (chunk: Buffer) => chunks.push(chunk));
    res.on('end', () => done(null, Buffer.concat(chunks)));
  });
  const bytes = Buffer.isBuffer(response.body) ? response.body : Buffer.alloc(0);
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers as Record<string, string>, body: bytes, json };
}
