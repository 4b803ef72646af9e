import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { jest } from '@jest/globals';
import { ArgumentsHost, Logger, NotFoundException } from '@nestjs/common';
import { ErrorResponseFilter } from './error-response.filter.js';

/** A real ServerResponse on a socket that records what would go on the wire. */
function exchange(url = '/tasks/t-1') {
  const socket = new Socket();
  const written: Buffer[] = [];
  socket.write = ((chunk: Buffer | string, ...rest: unknown[]) => {
    written.push(Buffer.from(chunk));
    const callback = rest.find((arg) => typeof arg === 'function') as (() => void) | undefined;
    callback?.();
    return true;
  }) as Socket['write'];
  const req = new IncomingMessage(socket);
  req.method = 'GET';
  req.url = url;
  const res = new ServerResponse(req);
  res.assignSocket(socket);
  const host = { switchToHttp: () => ({ getRequest: () => req, getResponse: () => res }) } as unknown as ArgumentsHost;
  const wire = () => Buffer.concat(written).toString('utf8');
  return { res, host, wire };
}

function parse(wire: string): { head: string; body: unknown } {
  const [head, body] = wire.split('\r\n\r\n');
  return { head, body: JSON.parse(body) };
}

describe('ErrorResponseFilter', () => {
  const filter = new ErrorResponseFilter();
  let logged: jest.SpiedFunction<Logger['error']>;

  beforeEach(() => {
    logged = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
  });

  afterEach(() => logged.mockRestore());

  it('answers with the ErrorResponse as application/json', () => {
    const { host, wire } = exchange('/nowhere');
    filter.catch(new NotFoundException('Cannot GET /nowhere'), host);
    const { head, body } = parse(wire());
    expect(head).toMatch(/^HTTP\/1\.1 404 Not Found\r\n/);
    expect(head).toMatch(/\r\nContent-Type: application\/json\r\n/);
    expect(body).toMatchObject({ status: 404, message: 'Cannot GET /nowhere', retryable: false });
    expect(logged).not.toHaveBeenCalled();
  });

  it('answers the unexpected with a generic 500, no stack in the body, and logs it with its stack', () => {
    const { host, wire } = exchange();
    const error = new TypeError('boom at a place');
    filter.catch(error, host);
    const text = wire();
    expect(parse(text).body).toEqual({ status: 500, message: 'Internal server error', instance: expect.any(String), retryable: false });
    expect(text).not.toContain('boom');
    expect(text).not.toContain('    at ');
    expect(logged).toHaveBeenCalledWith({ err: error }, expect.stringContaining('GET /tasks/t-1 failed: boom at a place'));
  });

  it('cuts the connection when the response had already begun, rather than append to it', () => {
    const { res, host } = exchange();
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.write('{"partial":');
    const destroy = jest.spyOn(res, 'destroy');
    filter.catch(new Error('mid-response'), host);
    expect(destroy).toHaveBeenCalled();
  });
});
