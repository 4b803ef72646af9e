import type { SchemaObject } from '@nestjs/swagger';
import { ErrorResponse, TOKEN_ERROR_CODES } from '../http/error-response.js';
import { schemaRef } from './api-docs-part.js';

type RequiredKeys<T> = { [K in keyof T]-?: object extends Pick<T, K> ? never : K }[keyof T];

/** The name of ERROR_RESPONSE_SCHEMA in the document. */
export const ERROR_RESPONSE = 'ErrorResponse';

/** `ErrorResponse` (src/http/error-response.ts) as a schema; the compiler holds its properties to the interface's. */
export const ERROR_RESPONSE_SCHEMA = {
  type: 'object',
  description: "Conductor's error body.",
  required: ['status', 'message', 'instance', 'retryable'] satisfies RequiredKeys<ErrorResponse>[],
  properties: {
    status: { type: 'integer', description: 'The HTTP status of the response.' },
    message: { type: 'string' },
    instance: { type: 'string', description: 'The host name of the server that answered.' },
    retryable: { type: 'boolean', description: 'Whether the same request may succeed later unchanged.' },
    error: {
      type: 'string',
      enum: [...TOKEN_ERROR_CODES],
      description: "401s of a task read only: Orkes' token error code. Conductor's SDKs fetch a new token when they see one.",
    },
  } satisfies Record<keyof ErrorResponse, SchemaObject>,
} satisfies SchemaObject;

/**
 * The body of an error response with HTTP status `status`: an ErrorResponse whose `status` is
 * that one; with `tokenError`, one that carries `error` (a task read's 401).
 */
export function errorResponseSchema(status: number, { tokenError = false } = {}): SchemaObject {
  return {
    allOf: [
      schemaRef(ERROR_RESPONSE),
      {
        type: 'object',
        ...(tokenError && { required: ['error'] }),
        properties: { status: { type: 'integer', enum: [status] }, ...(tokenError && { error: ERROR_RESPONSE_SCHEMA.properties.error }) },
      },
    ],
  };
}
