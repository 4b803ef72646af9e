import { Agent, IncomingHttpHeaders, request } from 'node:http';

export interface HttpAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * One GET with node:http, on `agent`'s connections (keep-alive when it keeps them), so that a test
 * sees the headers as sent (`Connection` included) and its connections behave as a client's do.
 * Rejects on a transport failure (ECONNRESET, ECONNREFUSED, a socket closed without an answer).
 */
export function httpGet(url: string, headers: Record<string, string> = {}, agent?: Agent): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}
