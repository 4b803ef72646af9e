import { IncomingMessage } from 'node:http';
import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { IS_PUBLIC } from './public.decorator.js';
import { TokenVerifier } from './token-verifier.js';

/**
 * The global guard (APP_GUARD): every Nest route needs an accepted token unless it is `@Public()`.
 * Refusals are `UnauthenticatedError`s, which the exception filter answers with a 401.
 */
@Injectable()
export class TokenAuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly verifier: TokenVerifier,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (this.reflector.getAllAndOverride<boolean | undefined>(IS_PUBLIC, [context.getHandler(), context.getClass()])) {
      return true;
    }
    await this.verifier.verifyRequest(context.switchToHttp().getRequest<IncomingMessage>().headers);
    return true;
  }
}
