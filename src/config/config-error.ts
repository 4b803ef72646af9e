/** A configuration value is missing or wrong. The message names the variable and the problem. */
export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  readonly retryable = false;

  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}
