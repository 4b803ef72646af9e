import { DomainError } from '../common/domain-error.js';

/** A configuration value is missing or wrong. The message names the variable and the problem. */
export class ConfigError extends DomainError {
  readonly code = 'CONFIG_INVALID';
  readonly retryable = false;
}
