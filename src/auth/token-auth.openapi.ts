import type { SecurityRequirementObject, SecuritySchemeObject } from '@nestjs/swagger';

/** The two ways a request carries its token (TokenVerifier reads both), as OpenAPI security schemes. */
export const TOKEN_SECURITY_SCHEMES = {
  'X-Authorization': {
    type: 'apiKey',
    in: 'header',
    name: 'X-Authorization',
    description: "The token as it is, as Conductor's clients send it: a static token (AUTH_TOKENS) or a JWT from POST /api/token.",
  },
  Bearer: {
    type: 'http',
    scheme: 'bearer',
    description: 'The same token as `Authorization: Bearer <token>`.',
  },
} as const satisfies Record<string, SecuritySchemeObject>;

/** Either scheme is enough. */
export const TOKEN_SECURITY: SecurityRequirementObject[] = Object.keys(TOKEN_SECURITY_SCHEMES).map((name) => ({ [name]: [] }));
