import { IncomingMessage } from 'node:http';
import { CanActivate, ExecutionContext, Injectable, NotFoundException } from '@nestjs/common';
import { TokenIssuer } from './token-issuer.js';

/**
 * Without access keys, POST /api/token does not exist, as on Conductor OSS (clients such as the
 * Conductor SDK detect OSS by this 404 and go on without a token). Answered exactly as an unknown
 * route is, before the body is even looked at.
 */
@Injectable()
export class TokenIssuingEnabledGuard implements CanActivate {
  constructor(private readonly issuer: TokenIssuer) {}

  canActivate(context: ExecutionContext): boolean {
    if (this.issuer.enabled) return true;
    const req = context.switchToHttp().getRequest<IncomingMessage>();
    throw new NotFoundException(`Cannot ${req.method} ${req.url}`);
  }
}
