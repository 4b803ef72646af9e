import { ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { Public } from './public.decorator.js';
import { TokenAuthGuard } from './token-auth.guard.js';
import { TokenVerifier } from './token-verifier.js';
import { UnauthenticatedError } from './unauthenticated.error.js';

class Routes {
  protectedRoute(): void {}

  @Public()
  publicRoute(): void {}
}

@Public()
class PublicRoutes {
  anyRoute(): void {}
}

function context(handler: () => void, cls: object, headers: Record<string, string>): ExecutionContext {
  return {
    getHandler: () => handler,
    getClass: () => cls,
    switchToHttp: () => ({ getRequest: () => ({ headers }) }),
  } as unknown as ExecutionContext;
}

describe('TokenAuthGuard', () => {
  const verifier = new TokenVerifier({ tokens: ['good'], keys: new Map(), jwtTtlSeconds: 60 });
  const guard = new TokenAuthGuard(new Reflector(), verifier);
  const { protectedRoute, publicRoute } = Routes.prototype;

  it('lets a request with an accepted token through, by either header', async () => {
    await expect(guard.canActivate(context(protectedRoute, Routes, { 'x-authorization': 'good' }))).resolves.toBe(true);
    await expect(guard.canActivate(context(protectedRoute, Routes, { authorization: 'Bearer good' }))).resolves.toBe(true);
  });

  it('refuses a request without a token, or with a wrong one, with UnauthenticatedError', async () => {
    await expect(guard.canActivate(context(protectedRoute, Routes, {}))).rejects.toEqual(new UnauthenticatedError('TOKEN_MISSING'));
    await expect(guard.canActivate(context(protectedRoute, Routes, { 'x-authorization': 'bad' }))).rejects.toBeInstanceOf(
      UnauthenticatedError,
    );
  });

  it('lets @Public() routes and classes through without a token', async () => {
    await expect(guard.canActivate(context(publicRoute, Routes, {}))).resolves.toBe(true);
    await expect(guard.canActivate(context(PublicRoutes.prototype.anyRoute, PublicRoutes, {}))).resolves.toBe(true);
  });
});
