import { Injectable } from '@nestjs/common';

/**
 * Whether this instance is draining: it has been told to stop (SIGTERM), readiness answers 503 so
 * that load balancers take it out, and every response asks the client to close its connection,
 * while requests are still served. Set once and never cleared: a draining instance only ends.
 */
@Injectable()
export class DrainState {
  private active = false;

  /** Read on every request by the front listener (src/http/front-route.ts): a field, nothing more. */
  get draining(): boolean {
    return this.active;
  }

  begin(): void {
    this.active = true;
  }
}
