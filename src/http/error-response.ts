/** The `error` codes of a 401, Orkes' token error codes. */
export const TOKEN_ERROR_CODES = ['INVALID_TOKEN', 'EXPIRED_TOKEN'] as const;

/**
 * Conductor's error body, as its clients parse it. `instance` names the server that answered
 * (Conductor puts its host there). `error` appears on 401s only, with Orkes' token error codes:
 * the Conductor SDKs fetch a new token and retry when they see them.
 */
export interface ErrorResponse {
  readonly status: number;
  readonly message: string;
  readonly instance: string;
  readonly retryable: boolean;
  readonly error?: (typeof TOKEN_ERROR_CODES)[number];
}
