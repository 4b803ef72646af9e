import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { INestApplication } from '@nestjs/common';
import { DocumentBuilder, OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import { TOKEN_SECURITY_SCHEMES } from '../auth/token-auth.openapi.js';
import { HEALTH_API_DOCS } from '../health/health.openapi.js';
import { TaskEventDto } from '../ingest/dto/task-event.dto.js';
import { TASK_READ_API_DOCS, TASK_SCHEMA } from '../tasks/task-read.openapi.js';
import { ApiDocsPart } from './api-docs-part.js';
import { ERROR_RESPONSE, ERROR_RESPONSE_SCHEMA } from './error-response-schema.js';
import { validationRulesSchema } from './validation-rules-schema.js';

/** Where the document is served: Swagger UI at /api-docs, the JSON at /api-docs-json. */
export const API_DOCS_PATH = 'api-docs';

/**
 * What the Nest controllers' decorators do not say. The task's schema is the event DTO's rules
 * (src/ingest/dto/task-event.dto.ts): a read serves exactly the bytes an event carried.
 */
const PARTS: readonly ApiDocsPart[] = [
  {
    schemas: {
      [TASK_SCHEMA]: validationRulesSchema(TaskEventDto, {
        description:
          "Conductor's Task JSON, served exactly as it was produced to the source topic. The fields listed are checked at ingest (a task without them is dead-lettered, never stored); a field not listed is kept and served as produced.",
      }),
      [ERROR_RESPONSE]: ERROR_RESPONSE_SCHEMA,
    },
    securitySchemes: TOKEN_SECURITY_SCHEMES,
  },
  TASK_READ_API_DOCS,
  HEALTH_API_DOCS,
];

/** The version of the service, from its package.json (two levels up from src/openapi and dist/openapi alike). */
function serviceVersion(): string {
  const manifest = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8')) as { version: string };
  return manifest.version;
}

/**
 * The OpenAPI document of the service: what @nestjs/swagger reads from the Nest controllers, and
 * every part above. A path or a name given twice is an error rather than one silently replacing
 * the other.
 */
export function buildApiDocument(app: INestApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('task-cache')
    .setDescription(
      "A read cache of Conductor tasks: the latest state of each task, from the task-update events of a Kafka topic, served as Conductor's GET /api/tasks/{taskId} answers. Errors are Conductor's ErrorResponse.",
    )
    .setVersion(serviceVersion())
    .addTag('tasks', 'Reading tasks; needs a token.')
    .addTag('auth', 'Tokens for access keys.')
    .addTag('health', 'For load balancers and orchestrators; public.')
    .build();
  const document = SwaggerModule.createDocument(app, config);
  const components = (document.components ??= {});
  const schemas = (components.schemas ??= {});
  const securitySchemes = (components.securitySchemes ??= {});
  for (const part of PARTS) {
    mergeNew(document.paths, part.paths, 'path');
    mergeNew(schemas, part.schemas, 'schema');
    mergeNew(securitySchemes, part.securitySchemes, 'security scheme');
  }
  return document;
}

function mergeNew<T>(into: Record<string, T>, from: Readonly<Record<string, T>> | undefined, what: string): void {
  for (const [name, value] of Object.entries(from ?? {})) {
    if (Object.hasOwn(into, name)) throw new Error(`OpenAPI document: ${what} ${name} is described twice`);
    into[name] = value;
  }
}

/**
 * Serves the document, public (no token: these are Express routes, which the token guard does not
 * cover, and the read route does not take them): Swagger UI and its assets under /api-docs, the
 * JSON at /api-docs-json. Built once, here, so a document that cannot be built stops the start.
 */
export function serveApiDocs(app: INestApplication): void {
  SwaggerModule.setup(API_DOCS_PATH, app, buildApiDocument(app), { raw: ['json'], customSiteTitle: 'task-cache API' });
}
