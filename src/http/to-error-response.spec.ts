import { hostname } from 'node:os';
import {
  BadRequestException,
  NotFoundException,
  PayloadTooLargeException,
  RequestTimeoutException,
  ServiceUnavailableException,
} from '@nestjs/common';
import { InvalidCredentialsError } from '../auth/invalid-credentials.error.js';
import { UnauthenticatedError } from '../auth/unauthenticated.error.js';
import { ConfigError } from '../config/config-error.js';
import { InvalidTaskEventError } from '../ingest/invalid-task-event.error.js';
import { ProjectionUnavailableError } from '../projection/projection-unavailable.error.js';
import { InvalidTaskIdError } from '../tasks/invalid-task-id.error.js';
import { TaskNotFoundError } from '../tasks/task-not-found.error.js';
import { INTERNAL_ERROR_MESSAGE, toErrorResponse } from './to-error-response.js';

const instance = hostname();

// The real error classes, so a renamed or unmapped code fails here rather than turning into a 500.
describe('toErrorResponse', () => {
  it.each([
    [new TaskNotFoundError('t-1'), { status: 404, message: 'Task not found for taskId: t-1', retryable: false }],
    [
      new InvalidTaskIdError(),
      { status: 400, message: 'Invalid taskId: expected 1 to 128 characters of A-Z a-z 0-9 _ . : -', retryable: false },
    ],
    [
      new UnauthenticatedError('TOKEN_MISSING'),
      {
        status: 401,
        message: 'Missing token: send X-Authorization: <token> or Authorization: Bearer <token>',
        retryable: false,
        error: 'INVALID_TOKEN',
      },
    ],
    [new UnauthenticatedError('TOKEN_INVALID'), { status: 401, message: 'Invalid token', retryable: false, error: 'INVALID_TOKEN' }],
    [new UnauthenticatedError('TOKEN_EXPIRED'), { status: 401, message: 'Token expired', retryable: false, error: 'EXPIRED_TOKEN' }],
    [new InvalidCredentialsError(), { status: 401, message: 'Invalid keyId or keySecret', retryable: false }],
    [
      new ProjectionUnavailableError(new Error('connect ECONNREFUSED 127.0.0.1:6379')),
      { status: 503, message: 'Task store unavailable; retry later', retryable: true },
    ],
  ])('maps %s', (error, expected) => {
    const { status, message, retryable, ...rest } = expected;
    expect(toErrorResponse(error)).toStrictEqual({ status, message, instance, retryable, ...rest });
  });

  it('puts the fields in the order Conductor writes them', () => {
    expect(Object.keys(toErrorResponse(new UnauthenticatedError('TOKEN_EXPIRED')))).toEqual([
      'status',
      'message',
      'instance',
      'retryable',
      'error',
    ]);
  });

  it('answers a domain error that never belongs in an answer, or any other error, with a 500 that hides its cause', () => {
    const internal = { status: 500, message: INTERNAL_ERROR_MESSAGE, instance, retryable: false };
    expect(toErrorResponse(new ConfigError('secret detail'))).toStrictEqual(internal);
    expect(toErrorResponse(new InvalidTaskEventError('INVALID_JSON', 'secret detail'))).toStrictEqual(internal);
    expect(toErrorResponse(new TypeError("Cannot read properties of undefined (reading 'x')"))).toStrictEqual(internal);
    expect(toErrorResponse('a string')).toStrictEqual(internal);
    expect(toErrorResponse(undefined)).toStrictEqual(internal);
  });

  it("keeps the framework's client errors: unknown route, refused body, failed validation", () => {
    expect(toErrorResponse(new NotFoundException('Cannot GET /nowhere'))).toStrictEqual({
      status: 404,
      message: 'Cannot GET /nowhere',
      instance,
      retryable: false,
    });
    expect(toErrorResponse(new PayloadTooLargeException('Body too large')).status).toBe(413);
    expect(toErrorResponse(new PayloadTooLargeException('Body too large')).retryable).toBe(false);
    expect(toErrorResponse(new RequestTimeoutException('Too slow'))).toMatchObject({ status: 408, retryable: true });
    expect(toErrorResponse(new BadRequestException(['keyId must be a string', 'keySecret should not be empty'])).message).toBe(
      'keyId must be a string; keySecret should not be empty',
    );
  });

  it("keeps Express's exposed client errors (http-errors) but not its server errors", () => {
    const badRequest = Object.assign(new Error('Failed to decode param'), { status: 400, expose: true });
    expect(toErrorResponse(badRequest)).toMatchObject({ status: 400, message: 'Failed to decode param' });
    const serverSide = Object.assign(new Error('internal detail'), { status: 500, expose: false });
    expect(toErrorResponse(serverSide)).toMatchObject({ status: 500, message: INTERNAL_ERROR_MESSAGE });
    expect(toErrorResponse(new ServiceUnavailableException('detail')).status).toBe(500);
  });
});
