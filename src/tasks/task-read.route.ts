import { IncomingMessage, ServerResponse } from 'node:http';
import { Injectable } from '@nestjs/common';
import { TokenVerifier } from '../auth/token-verifier.js';
import { HttpConfig } from '../config/app-config.js';
import { FrontRoute } from '../http/front-route.js';
import { sendErrorResponse } from '../http/send-error-response.js';
import { DrainState } from '../lifecycle/drain-state.js';
import { READ_ROUTES, ReadLatencyHistogram, ReadRoute } from '../metrics/read-latency-histogram.js';
import { TaskCacheMetrics } from '../metrics/task-cache-metrics.js';
import { StoredTask } from '../projection/stored-task.js';
import { isValidTaskId } from '../projection/task-id.js';
import { InvalidTaskIdError } from './invalid-task-id.error.js';
import { TaskNotFoundError } from './task-not-found.error.js';
import { TaskWatchers, WatchAnswer } from './task-watchers.js';
import { TasksService } from './tasks.service.js';

const TASKS = '/tasks/';
const API_TASKS = '/api/tasks/';
const [TASKS_ROUTE, API_TASKS_ROUTE] = READ_ROUTES;
/** The longest wait a watch is held for; a longer `Prefer: wait` is cut to it. */
export const MAX_WAIT_SECONDS = 60;

/**
 * GET (and HEAD) /tasks/:taskId and /api/tasks/:taskId, the hot path, as a front route (mounted in
 * app.factory.ts; why: src/http/front-route.ts). Per request: match the path, verify the token, validate the id,
 * one Redis round trip, and the stored bytes written as they are, with an ETag from their version.
 * A missing (or deleted) task is a 404 ErrorResponse, or a bare 204 when so configured. With
 * metrics on, every read is observed by route and status, timed from here to its response written.
 *
 * A read with `Prefer: wait=N` (RFC 7240) is a watch: it is held until the task differs from the
 * client's copy, named by If-None-Match (no If-None-Match: the client has none, the task being
 * missing), for at most N seconds (MAX_WAIT_SECONDS at most), then answered as an ordinary read would
 * be at that moment, with `Preference-Applied: wait=N`. Watches are held by `TaskWatchers`, and
 * are not observed by the read histogram (their time is the task's, not the service's). A
 * draining instance holds none: it answers at once, and those it held are answered from a fresh read.
 */
@Injectable()
export class TaskReadRoute implements FrontRoute {
  private readonly missingTaskAsNoContent: boolean;
  /** Absent without metrics: the read path then does no metrics work at all. */
  private readonly readDuration: ReadLatencyHistogram | undefined;

  constructor(
    private readonly verifier: TokenVerifier,
    private readonly tasks: TasksService,
    private readonly watchers: TaskWatchers,
    private readonly drain: DrainState,
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

  /** `respond`, timed and observed by route and status; a watch is not. */
  private async respondObserved(req: IncomingMessage, res: ServerResponse, rawTaskId: string, url: string, readDuration: ReadLatencyHistogram): Promise<void> {
    const started = performance.now();
    const status = await this.respond(req, res, rawTaskId);
    if (status === HELD) return;
    const route: ReadRoute = url.startsWith(TASKS) ? TASKS_ROUTE : API_TASKS_ROUTE;
    readDuration.observe(route, status, (performance.now() - started) / 1000);
  }

  /** Answers the read, or holds it as a watch (HELD); resolves with the status answered, never rejects. */
  private async respond(req: IncomingMessage, res: ServerResponse, rawTaskId: string): Promise<number | typeof HELD> {
    try {
      await this.verifier.verifyRequest(req.headers);
      const taskId = decodePathSegment(rawTaskId);
      const prefer = req.headers.prefer;
      if (prefer !== undefined && !this.drain.draining) {
        const waitSeconds = waitPreference(Array.isArray(prefer) ? prefer.join(',') : prefer);
        if (waitSeconds > 0) {
          this.watch(req, res, taskId, waitSeconds);
          return HELD;
        }
      }
      return this.answerTask(res, await this.tasks.getTask(taskId), req.headers['if-none-match']);
    } catch (error) {
      if (error instanceof TaskNotFoundError) return this.answerMissing(req, res, error);
      return sendErrorResponse(req, res, error);
    }
  }

  /** Holds the read until the task differs from the client's copy, or the wait ends. Throws on an invalid id or a full instance. */
  private watch(req: IncomingMessage, res: ServerResponse, taskId: string, waitSeconds: number): void {
    if (!isValidTaskId(taskId)) throw new InvalidTaskIdError();
    const ifNoneMatch = req.headers['if-none-match'];
    // If-None-Match is parsed once: a watch is compared with every read of its task.
    const copy = ifNoneMatch === undefined ? undefined : entityTags(ifNoneMatch);
    const unchanged =
      copy === undefined ? (task: StoredTask | null) => task === null : (task: StoredTask | null) => task !== null && (copy === '*' || copy.has(etagOf(task)));
    const cancel = this.watchers.hold(taskId, waitSeconds * 1000, unchanged, (answer) => {
      res.off('close', cancel);
      // Held since before a drain began: the client must open its next connection elsewhere too.
      if (this.drain.draining) res.setHeader('Connection', 'close');
      this.answerWatch(req, res, taskId, ifNoneMatch, answer);
    });
    res.setHeader('Preference-Applied', `wait=${waitSeconds}`);
    res.on('close', cancel);
  }

  private answerWatch(req: IncomingMessage, res: ServerResponse, taskId: string, ifNoneMatch: string | undefined, answer: WatchAnswer): void {
    if (answer.kind === 'failed') {
      // Not an answer to the watch: the read failed.
      res.removeHeader('Preference-Applied');
      sendErrorResponse(req, res, answer.error);
    } else if (answer.task === null) {
      this.answerMissing(req, res, new TaskNotFoundError(taskId));
    } else {
      this.answerTask(res, answer.task, ifNoneMatch);
    }
  }

  /** The task, or 304 when the client's copy (If-None-Match) is it. */
  private answerTask(res: ServerResponse, task: StoredTask, ifNoneMatch: string | undefined): number {
    const etag = etagOf(task);
    if (ifNoneMatch !== undefined && etagMatches(ifNoneMatch, etag)) {
      res.writeHead(304, ['ETag', etag]);
      res.end();
      return 304;
    }
    res.writeHead(200, ['Content-Type', 'application/json', 'Content-Length', String(task.value.length), 'ETag', etag]);
    res.end(task.value);
    return 200;
  }

  private answerMissing(req: IncomingMessage, res: ServerResponse, error: TaskNotFoundError): number {
    if (!this.missingTaskAsNoContent) return sendErrorResponse(req, res, error);
    // Conductor OSS before 3.21.20 answered so, and its SDK resolves null for it.
    res.writeHead(204);
    res.end();
    return 204;
  }
}

/** What `respond` resolves with for a read it holds as a watch: not answered yet. */
const HELD = Symbol('held');

/** The strong ETag of a stored task: its version (partition-offset of the event stored). */
function etagOf(task: StoredTask): string {
  return `"${task.version}"`;
}

/**
 * The seconds of a `wait` preference (RFC 7240: `Prefer: wait=30`, among other preferences,
 * possibly quoted), capped at MAX_WAIT_SECONDS; 0 when there is none or it is not a number, a
 * preference the server ignores.
 */
export function waitPreference(prefer: string): number {
  for (const preference of prefer.split(',')) {
    const token = preference.split(';', 1)[0];
    const equals = token.indexOf('=');
    if (equals === -1 || token.slice(0, equals).trim().toLowerCase() !== 'wait') continue;
    const [, bare, quoted] = /^(?:([0-9]+)|"([0-9]+)")$/.exec(token.slice(equals + 1).trim()) ?? [];
    const seconds = bare ?? quoted;
    // Any whole number is a wait, however long: it is cut to the cap.
    return seconds === undefined ? 0 : Math.min(Number(seconds), MAX_WAIT_SECONDS);
  }
  return 0;
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

/** The entity tags If-None-Match names, as strong tags (RFC 9110's weak comparison), or `*`. */
export function entityTags(ifNoneMatch: string): Set<string> | '*' {
  if (ifNoneMatch.trim() === '*') return '*';
  return new Set(ifNoneMatch.split(',').map((candidate) => {
    const tag = candidate.trim();
    return tag.startsWith('W/') ? tag.slice(2) : tag;
  }));
}

/** If-None-Match against our strong ETag, with the weak comparison RFC 9110 prescribes for it. */
export function etagMatches(ifNoneMatch: string, etag: string): boolean {
  if (ifNoneMatch === etag) return true;
  const tags = entityTags(ifNoneMatch);
  return tags === '*' || tags.has(etag);
}
