import { Injectable } from '@nestjs/common';

/**
 * Whether this instance is draining: it has been told to stop (SIGTERM), readiness answers 503 so
 * that load balancers take it out, and every response asks the client to close its connection,
 * while requests are still served. Set once and never cleared: a draining instance only ends.
 * What holds requests open (watches) is told when the drain begins, to answer them at once.
 */
@Injectable()
export class DrainState {
  private active = false;
  private readonly listeners: (() => void)[] = [];

  /** Read on every request by the front listener (src/http/front-route.ts): a field, nothing more. */
  get draining(): boolean {
    return this.active;
  }

  begin(): void {
    if (this.active) return;
    this.active = true;
    for (const listener of this.listeners) listener();
  }

  /** Calls `listener` when the drain begins. */
  onBegin(listener: () => void): void {
    this.listeners.push(listener);
  }
}
