import { Body, Controller, HttpCode, Post, UseGuards, ValidationPipe } from '@nestjs/common';
import { GenerateTokenRequest } from './dto/generate-token-request.dto.js';
import { Public } from './public.decorator.js';
import { TokenIssuer } from './token-issuer.js';
import { TokenIssuingEnabledGuard } from './token-issuing-enabled.guard.js';

/** POST /api/token: `{ keyId, keySecret }` in, `{ token }` out, as Orkes answers it. */
@Controller('api/token')
export class TokenController {
  constructor(private readonly issuer: TokenIssuer) {}

  @Public()
  @UseGuards(TokenIssuingEnabledGuard)
  @Post()
  @HttpCode(200)
  async generateToken(
    @Body(new ValidationPipe({ whitelist: true })) request: GenerateTokenRequest,
  ): Promise<{ token: string }> {
    return { token: await this.issuer.issue(request.keyId, request.keySecret) };
  }
}
