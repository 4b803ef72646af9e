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
  readonly error?: 'INVALID_TOKEN' | 'EXPIRED_TOKEN';
}
