import { hostname } from 'node:os';
import {
  BadRequestException,
  NotFoundException,
  PayloadTooLargeException,
  RequestTimeoutException,
  ServiceUnavailableException,
} from '@nestjs/common';
import { DomainError } from '../common/domain-error.js';
import { INTERNAL_ERROR_MESSAGE, toErrorResponse } from './to-error-response.js';

class SomeDomainError extends DomainError {
  constructor(
    readonly code: string,
    readonly retryable: boolean,
    message: string,
  ) {
    super(message);
  }
}

const instance = hostname();

describe('toErrorResponse', () => {
  it.each([
    ['TASK_NOT_FOUND', false, 'Task not found for taskId: t-1', { status: 404, message: 'Task not found for taskId: t-1' }],
    ['INVALID_TASK_ID', false, 'Invalid taskId', { status: 400, message: 'Invalid taskId' }],
    ['TOKEN_MISSING', false, 'Missing token', { status: 401, message: 'Missing token', error: 'INVALID_TOKEN' }],
    ['TOKEN_INVALID', false, 'Invalid token', { status: 401, message: 'Invalid token', error: 'INVALID_TOKEN' }],
    ['TOKEN_EXPIRED', false, 'Token expired', { status: 401, message: 'Token expired', error: 'EXPIRED_TOKEN' }],
    ['INVALID_CREDENTIALS', false, 'Invalid keyId or keySecret', { status: 401, message: 'Invalid keyId or keySecret' }],
    [
      'PROJECTION_UNAVAILABLE',
      true,
      'projection store unavailable: connect ECONNREFUSED 127.0.0.1:6379',
      { status: 503, message: 'Task store unavailable; retry later' },
    ],
  ])('maps %s', (code, retryable, message, expected) => {
    expect(toErrorResponse(new SomeDomainError(code, retryable, message))).toStrictEqual({ ...expected, instance, retryable });
  });

  it('puts the fields in the order Conductor writes them', () => {
    expect(Object.keys(toErrorResponse(new SomeDomainError('TOKEN_EXPIRED', false, 'x')))).toEqual([
      'status',
      'message',
      'instance',
      'retryable',
      'error',
    ]);
  });

  it('answers an unknown domain error, or any other error, with a 500 that hides its cause', () => {
    const internal = { status: 500, message: INTERNAL_ERROR_MESSAGE, instance, retryable: false };
    expect(toErrorResponse(new SomeDomainError('CONFIG_INVALID', false, 'secret detail'))).toStrictEqual(internal);
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
