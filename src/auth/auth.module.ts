import { MiddlewareConsumer, Module, NestModule, RequestMethod } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { JsonBodyMiddleware } from '../http/json-body.middleware.js';
import { TokenAuthGuard } from './token-auth.guard.js';
import { TokenController } from './token.controller.js';
import { TokenIssuer } from './token-issuer.js';
import { TokenIssuingEnabledGuard } from './token-issuing-enabled.guard.js';
import { TokenVerifier } from './token-verifier.js';

@Module({
  controllers: [TokenController],
  providers: [TokenVerifier, TokenIssuer, TokenIssuingEnabledGuard, { provide: APP_GUARD, useClass: TokenAuthGuard }],
  exports: [TokenVerifier],
})
export class AuthModule implements NestModule {
  constructor(private readonly issuer: TokenIssuer) {}

  configure(consumer: MiddlewareConsumer): void {
    // The only body the service reads. Without keys the route answers 404 before any body is read.
    if (this.issuer.enabled) {
      consumer.apply(JsonBodyMiddleware).forRoutes({ path: 'api/token', method: RequestMethod.POST });
    }
  }
}
