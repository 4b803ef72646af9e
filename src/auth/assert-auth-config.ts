import { AuthConfig } from '../config/app-config.js';
import { ConfigError } from '../config/config-error.js';
import { JWT_SECRET_MIN_LENGTH } from './jwt-settings.js';
import { TOKEN_MAX_LENGTH } from './token-length.js';

/**
 * The rules every auth configuration must keep, whether `loadConfig` built it from the environment
 * or a test built it directly: `loadConfig`, `TokenVerifier` and `TokenIssuer` all call this, and
 * nothing else checks them. Throws `ConfigError` naming the variable; values are never echoed.
 *
 * `tokenSource` names where the static token at an index came from (`AUTH_TOKENS` or
 * `AUTH_TOKENS_FILE`); without it, `auth.tokens`.
 */
export function assertAuthConfig(auth: AuthConfig, tokenSource: (index: number) => string = () => 'auth.tokens'): void {
  // Longer tokens are refused before any other check (TOKEN_MAX_LENGTH), so such a token could never be used.
  const tooLong = auth.tokens.findIndex((token) => token.length > TOKEN_MAX_LENGTH);
  if (tooLong >= 0) {
    throw new ConfigError(
      `invalid configuration: ${tokenSource(tooLong)} holds a token longer than ${TOKEN_MAX_LENGTH} characters, the longest a request may present`,
    );
  }
  if (auth.keys.size > 0 && !auth.jwtSecret) {
    throw new ConfigError('invalid configuration: AUTH_JWT_SECRET is required when AUTH_KEYS is set');
  }
  if (auth.jwtSecret !== undefined && auth.jwtSecret.length < JWT_SECRET_MIN_LENGTH) {
    throw new ConfigError(`invalid configuration: AUTH_JWT_SECRET must be at least ${JWT_SECRET_MIN_LENGTH} characters long`);
  }
  if (auth.tokens.length === 0 && auth.keys.size === 0) {
    throw new ConfigError(
      'invalid configuration: no way to authenticate; set AUTH_TOKENS, AUTH_TOKENS_FILE or AUTH_KEYS (with AUTH_JWT_SECRET)',
    );
  }
}
