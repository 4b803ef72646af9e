import type { ContentObject, HeaderObject, OperationObject, PathItemObject, ReferenceObject, ResponseObject, SchemaObject } from '@nestjs/swagger';
import { TOKEN_SECURITY } from '../auth/token-auth.openapi.js';
import { ApiDocsPart, schemaRef } from '../openapi/api-docs-part.js';
import { errorResponseSchema } from '../openapi/error-response-schema.js';
import { TASK_ID_PATTERN, TASK_ID_RULE } from '../projection/task-id.js';

/** The name of the task's schema in the document (api-document.ts derives it from the event DTO). */
export const TASK_SCHEMA = 'Task';

const ETAG: HeaderObject = {
  description: 'The version of the stored task, `"<partition>-<offset>"` of the event that wrote it. Send it back in If-None-Match.',
  schema: { type: 'string', pattern: '^"[0-9]+-[0-9]+"$' },
};

const PREFERENCE_APPLIED: HeaderObject = {
  description: 'On the answer to a watch (a read with `Prefer: wait=N`) that was held or could have been: `wait=N`, the wait applied (N capped at 60).',
  required: false,
  schema: { type: 'string', pattern: '^wait=[0-9]+$' },
};

const CONTENT_LENGTH: HeaderObject = {
  description: 'The length of the body a GET would receive.',
  schema: { type: 'string', pattern: '^[0-9]+$' },
};

const json = (schema: SchemaObject | ReferenceObject): ContentObject => ({ 'application/json': { schema } });

/** The read's answers; a HEAD gets the same statuses and headers, without a body. */
function responses(method: 'get' | 'head'): Record<string, ResponseObject> {
  const body = (content: ContentObject) => (method === 'get' ? { content } : {});
  const noBody = method === 'head' ? ' (no body: HEAD)' : '';
  return {
    '200': {
      description: `${method === 'get' ? 'The task: its JSON exactly as it was produced to the source topic.' : 'The headers of the GET, without a body.'} For a watch: as soon as the task differs from If-None-Match (at once if it already does), or has appeared.`,
      headers: method === 'get' ? { ETag: ETAG, 'Preference-Applied': PREFERENCE_APPLIED } : { ETag: ETAG, 'Content-Length': CONTENT_LENGTH, 'Preference-Applied': PREFERENCE_APPLIED },
      ...body(json(schemaRef(TASK_SCHEMA))),
    },
    '204': {
      description:
        'Only with READ_MISSING_TASK_STATUS=204 (Conductor OSS before 3.21.20): the task is not there (never seen, deleted, or expired by retention); no body. Otherwise that is a 404.',
    },
    '304': {
      description: 'If-None-Match holds the current ETag: the task is unchanged; no body. For a watch: its wait ended, or the instance began to drain, with the task unchanged.',
      headers: { ETag: ETAG, 'Preference-Applied': PREFERENCE_APPLIED },
    },
    '400': { description: `Malformed taskId (${TASK_ID_RULE}, or broken percent-encoding)${noBody}.`, ...body(json(errorResponseSchema(400))) },
    '401': {
      description: `No token, or one that is not accepted${noBody}. \`error\` says which: EXPIRED_TOKEN for an expired JWT (fetch a new one), INVALID_TOKEN otherwise. Checked before the taskId.`,
      ...body(json(errorResponseSchema(401, { tokenError: true }))),
    },
    '404': {
      description: `The task is not there, never seen, deleted or expired by retention${noBody}: \`Task not found for taskId: <id>\`. A 204 instead with READ_MISSING_TASK_STATUS=204. For a watch with If-None-Match: the task was deleted; without: its wait ended with the task still missing.`,
      headers: { 'Preference-Applied': PREFERENCE_APPLIED },
      ...body(json(errorResponseSchema(404))),
    },
    '503': {
      description: `The task store (Redis) is unreachable, or, for a watch, the instance already holds WATCH_MAX_HELD watches; \`retryable: true\`${noBody}.`,
      ...body(json(errorResponseSchema(503))),
    },
  };
}

function operation(method: 'get' | 'head', prefixed: boolean): OperationObject {
  const what = method === 'get' ? "The task's latest state" : 'The headers a GET would get, without the body';
  return {
    tags: ['tasks'],
    operationId: `${method}Task${prefixed ? '' : 'WithoutApiPrefix'}`,
    summary: method === 'get' ? 'Get a task by its id' : "A task's headers, without its body",
    description: `${what}, from the cache's projection of the task-update topic${prefixed ? '' : '; the same as under /api, where Conductor clients call it'}.`,
    security: TOKEN_SECURITY,
    parameters: [
      {
        name: 'taskId',
        in: 'path',
        required: true,
        description: `The task's id: ${TASK_ID_RULE}. Clients may percent-encode it (':' as %3A).`,
        schema: { type: 'string', pattern: TASK_ID_PATTERN.source },
      },
      {
        name: 'If-None-Match',
        in: 'header',
        required: false,
        description: 'An ETag of an earlier answer (or several, or `*`): a 304 without a body when the task is still that version.',
        schema: { type: 'string' },
      },
      {
        name: 'Prefer',
        in: 'header',
        required: false,
        description:
          '`wait=N` (RFC 7240; N seconds, at most 60): a watch. The read is held until the task differs from If-None-Match (without If-None-Match: until a missing task appears), then answered 200 (or 404 if it was deleted) at once; when N seconds pass unchanged, it is answered as a plain read would be then (304, or 404). Answered at once when the task already differs. Other preferences, and a wait that is not a whole number, are ignored. A draining instance holds no watch, and answers those it holds at once from a fresh read. No Preference-Applied on a 503. Each held watch holds its connection; clients retry a 503 (the instance holds WATCH_MAX_HELD) after a pause.',
        schema: { type: 'string', example: 'wait=30' },
      },
    ],
    responses: responses(method),
  };
}

const pathItem = (prefixed: boolean): PathItemObject => ({ get: operation('get', prefixed), head: operation('head', prefixed) });

/**
 * The task read in the OpenAPI document. The route is a front route on the bare HTTP server
 * (task-read.route.ts), which @nestjs/swagger cannot see, so it is described here, beside it, and
 * merged into the document once at start-up: nothing is added to a request.
 */
export const TASK_READ_API_DOCS: ApiDocsPart = {
  paths: { '/api/tasks/{taskId}': pathItem(true), '/tasks/{taskId}': pathItem(false) },
};
