import { HttpException } from '@nestjs/common';
import { DomainError, DomainErrorCode } from '../common/domain-error.js';
import { ErrorResponse } from './error-response.js';
import { SERVER_INSTANCE } from './server-instance.js';

interface DomainErrorMapping {
  readonly status: number;
  /** Replaces the error's own message, which may describe internals. */
  readonly message?: string;
  readonly error?: ErrorResponse['error'];
}

/**
 * Every domain error code, and what a request that raised it is answered. By code, not by class:
 * the edge must not import the feature modules (tasks, ingest) it serves. `null`: the error never
 * belongs in an answer (configuration, events), so a request that raised it gets a plain 500.
 * Declared over the whole union, so a code added or renamed there does not compile until it is
 * mapped here.
 */
const DOMAIN_ERRORS = {
  TASK_NOT_FOUND: { status: 404 },
  INVALID_TASK_ID: { status: 400 },
  INVALID_BATCH_READ: { status: 400 },
  TOKEN_MISSING: { status: 401, error: 'INVALID_TOKEN' },
  TOKEN_INVALID: { status: 401, error: 'INVALID_TOKEN' },
  TOKEN_EXPIRED: { status: 401, error: 'EXPIRED_TOKEN' },
  INVALID_CREDENTIALS: { status: 401 },
  PROJECTION_UNAVAILABLE: { status: 503, message: 'Task store unavailable; retry later' },
  WEBHOOK_UNAUTHORIZED: { status: 401 },
  INVALID_NOTIFICATION: { status: 400 },
  BRIDGE_BUSY: { status: 503, message: 'The bridge has too many tasks to re-read; send the notification again later' },
  BRIDGE_TIMEOUT: { status: 503 },
  CONDUCTOR_UNAVAILABLE: { status: 503, message: 'Conductor could not be read; the bridge retries' },
  BRIDGE_UNAVAILABLE: { status: 503, message: 'The task could not be produced to Kafka; send the notification again later' },
  TOO_MANY_WATCHES: { status: 503, message: 'This instance holds its limit of watches; retry later, or read without Prefer: wait' },
  CONFIG_INVALID: null,
  VALUE_TOO_LARGE: null,
  INVALID_JSON: null,
  NOT_AN_OBJECT: null,
  INVALID_FIELDS: null,
  KEY_MISMATCH: null,
  MISSING_KEY: null,
  INVALID_KEY: null,
  UNDECODABLE: null,
  BATCH_UNREADABLE: null,
} as const satisfies Readonly<Record<DomainErrorCode, DomainErrorMapping | null>>;

export const INTERNAL_ERROR_MESSAGE = 'Internal server error';

/**
 * The one mapping from anything thrown while answering a request to Conductor's ErrorResponse.
 * Known domain errors keep their meaning; client errors raised by the framework (unknown route,
 * bad body) keep their status; everything else is a 500 that says nothing about its cause.
 */
export function toErrorResponse(error: unknown): ErrorResponse {
  if (error instanceof DomainError) {
    // hasOwn: a code outside the union (an untyped subclass) is an unknown error, not a crash.
    const mapping: DomainErrorMapping | null = Object.hasOwn(DOMAIN_ERRORS, error.code) ? DOMAIN_ERRORS[error.code] : null;
    if (mapping) {
      const response: ErrorResponse = {
        status: mapping.status,
        message: mapping.message ?? error.message,
        instance: SERVER_INSTANCE,
        retryable: error.retryable,
      };
      return mapping.error ? { ...response, error: mapping.error } : response;
    }
  }
  const clientError = asClientError(error);
  if (clientError) {
    // Too slow (408) or too many (429) may succeed later unchanged; other client errors will not.
    return { ...clientError, instance: SERVER_INSTANCE, retryable: clientError.status === 408 || clientError.status === 429 };
  }
  return { status: 500, message: INTERNAL_ERROR_MESSAGE, instance: SERVER_INSTANCE, retryable: false };
}

/** A 4xx from Nest (HttpException) or from Express and its parsers (http-errors with `expose`). */
function asClientError(error: unknown): { status: number; message: string } | undefined {
  if (error instanceof HttpException) {
    const status = error.getStatus();
    if (status < 400 || status >= 500) return undefined;
    const body = error.getResponse();
    const detail = typeof body === 'object' && body !== null && 'message' in body ? body.message : undefined;
    // ValidationPipe reports one message per failed constraint.
    const message = Array.isArray(detail) ? detail.join('; ') : typeof detail === 'string' ? detail : error.message;
    return { status, message };
  }
  if (error instanceof Error && 'status' in error && 'expose' in error && error.expose === true) {
    const status = Number(error.status);
    if (Number.isInteger(status) && status >= 400 && status < 500) return { status, message: error.message };
  }
  return undefined;
}
