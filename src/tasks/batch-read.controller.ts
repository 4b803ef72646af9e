import { ServerResponse } from 'node:http';
import { Controller, HttpCode, Post, Res } from '@nestjs/common';
import { ApiBody, ApiOkResponse, ApiOperation, ApiResponse, ApiSecurity, ApiTags } from '@nestjs/swagger';
import { JSON_BODY_MAX_DEPTH } from '../http/json-body.middleware.js';
import { JsonBody } from '../http/json-body.decorator.js';
import { schemaRef } from '../openapi/api-docs-part.js';
import { errorResponseSchema } from '../openapi/error-response-schema.js';
import { TASK_ID_PATTERN, TASK_ID_RULE } from '../projection/task-id.js';
import { BATCH_READ_ANSWER_BUDGET_BYTES, BATCH_READ_BODY_LIMIT_BYTES, MAX_BATCH_READ_IDS } from './batch-read-request.js';
import { TASK_SCHEMA } from './task-read.openapi.js';
import { TasksService } from './tasks.service.js';

const TASK_ID_SCHEMA = { type: 'string', pattern: TASK_ID_PATTERN.source } as const;

const BUDGET_MIB = BATCH_READ_ANSWER_BUDGET_BYTES / (1024 * 1024);

/**
 * POST /api/tasks/batch: `{ "taskIds": [...] }` in, `{ "tasks": {...}, "missing": [...],
 * "unprocessed": [...] }` out, in one Redis round trip (two when some tasks are large: the answer
 * holds at most BATCH_READ_ANSWER_BUDGET_BYTES of tasks, the rest is unprocessed). A Nest route (behind the global token guard): per request it reads up to
 * 1,000 tasks, so the framework's per-request cost is spread over them. The body is read after
 * the guard (`JsonBody`), and the stored bytes are written as they are, never parsed.
 */
@ApiTags('tasks')
@Controller('api/tasks/batch')
export class BatchReadController {
  constructor(private readonly tasks: TasksService) {}

  @Post()
  @HttpCode(200)
  @ApiSecurity('X-Authorization')
  @ApiSecurity('Bearer')
  @ApiOperation({
    operationId: 'getTasks',
    summary: 'Get several tasks by their ids, in one request',
    description: `Up to ${MAX_BATCH_READ_IDS} taskIds per request (duplicates included; each is answered once). Every task is read from the same generation of the projection, in one round trip to the store, or two when some tasks are large. An answer holds at most ${BUDGET_MIB} MiB of tasks (${BATCH_READ_ANSWER_BUDGET_BYTES} bytes; the first task found is always answered): the ids past it are listed in \`unprocessed\`, to be asked for again.`,
  })
  @ApiBody({
    required: true,
    schema: {
      type: 'object',
      required: ['taskIds'],
      properties: {
        taskIds: { type: 'array', maxItems: MAX_BATCH_READ_IDS, items: TASK_ID_SCHEMA, description: `The ids to read, ${TASK_ID_RULE} each. An empty list is answered with empty results.` },
      },
    },
  })
  @ApiOkResponse({
    description:
      `\`tasks\`: each task found, by its id, its JSON exactly as it was produced to the source topic (as GET /api/tasks/{taskId} serves it), in the order of the request. \`missing\`: the ids not there (never seen, deleted, or expired by retention), in the order of the request. \`unprocessed\`: the ids not read because the answer's ${BUDGET_MIB} MiB were spent, in the order of the request; empty when every task fit. Ask for them again (as DynamoDB's UnprocessedKeys). Each id requested is in one of the three, once.`,
    schema: {
      type: 'object',
      required: ['tasks', 'missing', 'unprocessed'],
      additionalProperties: false,
      properties: {
        tasks: { type: 'object', additionalProperties: schemaRef(TASK_SCHEMA) },
        missing: { type: 'array', items: TASK_ID_SCHEMA },
        unprocessed: { type: 'array', items: TASK_ID_SCHEMA, description: `Ids left out to keep the answer within ${BUDGET_MIB} MiB of tasks; to be asked for again.` },
      },
    },
  })
  @ApiResponse({
    status: 400,
    description: `A malformed JSON body, one nested deeper than ${JSON_BODY_MAX_DEPTH} levels, not an object, \`taskIds\` missing or not an array, more than ${MAX_BATCH_READ_IDS} ids, or an element that is not a valid taskId (named by its index, never its value).`,
    schema: errorResponseSchema(400),
  })
  @ApiResponse({ status: 401, description: 'No token, or one that is not accepted; checked before the body is read.', schema: errorResponseSchema(401) })
  @ApiResponse({ status: 413, description: `A body over ${BATCH_READ_BODY_LIMIT_BYTES} bytes.`, schema: errorResponseSchema(413) })
  @ApiResponse({ status: 415, description: 'A body that is not application/json.', schema: errorResponseSchema(415) })
  @ApiResponse({ status: 503, description: 'The task store (Redis) is unreachable; `retryable: true`.', schema: errorResponseSchema(503) })
  async readBatch(@JsonBody(BATCH_READ_BODY_LIMIT_BYTES) body: unknown, @Res() res: ServerResponse): Promise<void> {
    const bytes = await this.tasks.readBatch(body);
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': bytes.length });
    res.end(bytes);
  }
}
