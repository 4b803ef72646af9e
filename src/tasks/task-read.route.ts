import { IncomingMessage, ServerResponse } from 'node:http';
import { Injectable } from '@nestjs/common';
import { TokenVerifier } from '../auth/token-verifier.js';
import { HttpConfig } from '../config/app-config.js';
import { FrontRoute } from '../http/front-route.js';
import { sendErrorResponse } from '../http/send-error-response.js';
import { READ_ROUTES, ReadLatencyHistogram, ReadRoute } from '../metrics/read-latency-histogram.js';
import { TaskCacheMetrics } from '../metrics/task-cache-metrics.js';
import { InvalidTaskIdError } from './invalid-task-id.error.js';
import { TaskNotFoundError } from './task-not-found.error.js';
import { TasksService } from './tasks.service.js';

const TASKS = '/tasks/';
const API_TASKS = '/api/tasks/';
const [TASKS_ROUTE, API_TASKS_ROUTE] = READ_ROUTES;

/**
 * GET (and HEAD) /tasks/:taskId and /api/tasks/:taskId, the hot path, as a front route (mounted in
 * app.factory.ts; why: src/http/front-route.ts). Per request: match the path, verify the token, validate the id,
 * one Redis round trip, and the stored bytes written as they are, with an ETag from their version.
 * A missing (or deleted) task is a 404 ErrorResponse, or a bare 204 when so configured. With
 * metrics on, every read is observed by route and status, timed from here to its response written.
 */
@Injectable()
export class TaskReadRoute implements FrontRoute {
  private readonly missingTaskAsNoContent: boolean;
  /** Absent without metrics: the read path then does no metrics work at all. */
  private readonly readDuration: ReadLatencyHistogram | undefined;

  constructor(
    private readonly verifier: TokenVerifier,
    private readonly tasks: TasksService,
    config: HttpConfig,
    metrics: TaskCacheMetrics,
  ) {
    this.missingTaskAsNoContent = config.missingTaskStatus === 204;
    this.readDuration = metrics.recordsReads ? metrics.readDuration : undefined;
  }

  handle(req: IncomingMessage, res: ServerResponse): boolean {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const url = req.url ?? '';
    const rawTaskId = taskIdInPath(url);
    if (rawTaskId === undefined) return false;
    // Nothing to wait for or catch: respond() settles the request itself, every failure included
    // (sendErrorResponse in its catch), and the listener must return at once.
    if (this.readDuration === undefined) void this.respond(req, res, rawTaskId);
    else void this.respondObserved(req, res, rawTaskId, url, this.readDuration);
    return true;
  }

  /** `respond`, timed and observed by route and status. */
  private async respondObserved(req: IncomingMessage, res: ServerResponse, rawTaskId: string, url: string, readDuration: ReadLatencyHistogram): Promise<void> {
    const started = performance.now();
    const status = await this.respond(req, res, rawTaskId);
    const route: ReadRoute = url.startsWith(TASKS) ? TASKS_ROUTE : API_TASKS_ROUTE;
    readDuration.observe(route, status, (performance.now() - started) / 1000);
  }

  /** Answers the read; resolves with the status answered, never rejects. */
  private async respond(req: IncomingMessage, res: ServerResponse, rawTaskId: string): Promise<number> {
    try {
      await this.verifier.verifyRequest(req.headers);
      const task = await this.tasks.getTask(decodePathSegment(rawTaskId));
      const etag = `"${task.version}"`;
      const ifNoneMatch = req.headers['if-none-match'];
      if (ifNoneMatch !== undefined && etagMatches(ifNoneMatch, etag)) {
        res.writeHead(304, ['ETag', etag]);
        res.end();
        return 304;
      }
      res.writeHead(200, ['Content-Type', 'application/json', 'Content-Length', String(task.value.length), 'ETag', etag]);
      res.end(task.value);
      return 200;
    } catch (error) {
      if (error instanceof TaskNotFoundError && this.missingTaskAsNoContent) {
        // Conductor OSS before 3.21.20 answered so, and its SDK resolves null for it.
        res.writeHead(204);
        res.end();
        return 204;
      }
      return sendErrorResponse(req, res, error);
    }
  }
}

/**
 * The still-encoded taskId of `/tasks/{id}` or `/api/tasks/{id}` (query ignored), or undefined for
 * any other path, which the framework then answers (404 for `/tasks/a/b` or `/tasks/`).
 */
export function taskIdInPath(url: string): string | undefined {
  const start = url.startsWith(TASKS) ? TASKS.length : url.startsWith(API_TASKS) ? API_TASKS.length : -1;
  if (start === -1) return undefined;
  const queryAt = url.indexOf('?', start);
  const end = queryAt === -1 ? url.length : queryAt;
  const slashAt = url.indexOf('/', start);
  if (end === start || (slashAt !== -1 && slashAt < end)) return undefined;
  return url.slice(start, end);
}

/** Clients percent-encode path segments (the Conductor SDK encodes ':' as %3A). */
function decodePathSegment(segment: string): string {
  if (!segment.includes('%')) return segment;
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new InvalidTaskIdError();
  }
}

/** If-None-Match against our strong ETag, with the weak comparison RFC 9110 prescribes for it. */
export function etagMatches(ifNoneMatch: string, etag: string): boolean {
  if (ifNoneMatch === etag || ifNoneMatch === '*') return true;
  return ifNoneMatch.split(',').some((candidate) => {
    const tag = candidate.trim();
    return (tag.startsWith('W/') ? tag.slice(2) : tag) === etag;
  });
}
