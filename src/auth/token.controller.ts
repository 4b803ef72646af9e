import { Body, Controller, HttpCode, Post, UseGuards, ValidationPipe } from '@nestjs/common';
import { ApiBody, ApiOkResponse, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { JSON_BODY_LIMIT_BYTES, JSON_BODY_MAX_DEPTH } from '../http/json-body.middleware.js';
import { errorResponseSchema } from '../openapi/error-response-schema.js';
import { validationRulesSchema } from '../openapi/validation-rules-schema.js';
import { GenerateTokenRequest } from './dto/generate-token-request.dto.js';
import { Public } from './public.decorator.js';
import { TokenIssuer } from './token-issuer.js';
import { TokenIssuingEnabledGuard } from './token-issuing-enabled.guard.js';

/** POST /api/token: `{ keyId, keySecret }` in, `{ token }` out, as Orkes answers it. */
@ApiTags('auth')
@Controller('api/token')
export class TokenController {
  constructor(private readonly issuer: TokenIssuer) {}

  @Public()
  @UseGuards(TokenIssuingEnabledGuard)
  @Post()
  @HttpCode(200)
  @ApiOperation({
    operationId: 'generateToken',
    summary: 'Exchange an access key for a token',
    description: 'Only when the service has access keys (AUTH_KEYS); otherwise the route does not exist (404), as on Conductor OSS. Needs no token itself.',
  })
  @ApiBody({ required: true, schema: validationRulesSchema(GenerateTokenRequest) })
  @ApiOkResponse({
    description: 'A JWT (HS256) valid for AUTH_JWT_TTL_SECONDS, for X-Authorization or Authorization: Bearer.',
    schema: { type: 'object', required: ['token'], properties: { token: { type: 'string' } } },
  })
  @ApiResponse({ status: 400, description: `A malformed JSON body, one nested deeper than ${JSON_BODY_MAX_DEPTH} levels, or missing or mistyped fields (named, never their values).`, schema: errorResponseSchema(400) })
  @ApiResponse({ status: 401, description: 'No access key with this keyId and keySecret.', schema: errorResponseSchema(401) })
  @ApiResponse({ status: 404, description: 'Token issuing is off (no AUTH_KEYS): answered as an unknown route.', schema: errorResponseSchema(404) })
  @ApiResponse({ status: 413, description: `A body over ${JSON_BODY_LIMIT_BYTES} bytes.`, schema: errorResponseSchema(413) })
  @ApiResponse({ status: 415, description: 'A body that is not application/json.', schema: errorResponseSchema(415) })
  async generateToken(
    @Body(new ValidationPipe({ whitelist: true })) request: GenerateTokenRequest,
  ): Promise<{ token: string }> {
    return { token: await this.issuer.issue(request.keyId, request.keySecret) };
  }
}
