import { IncomingMessage } from 'node:http';
import { createParamDecorator, ExecutionContext } from '@nestjs/common';
import { readJsonBody } from './json-body.middleware.js';

/**
 * A handler's JSON body of at most `limitBytes` (`readJsonBody`), read when the parameter is
 * resolved: after the guards, unlike a middleware, so a request without an accepted token is
 * refused before its body is read.
 */
export const JsonBody = createParamDecorator((limitBytes: number, context: ExecutionContext): Promise<unknown> =>
  readJsonBody(context.switchToHttp().getRequest<IncomingMessage>(), limitBytes),
);
