import { Global, Module } from '@nestjs/common';
import { DrainState } from './drain-state.js';

/** The instance's own lifecycle: whether it is draining (see src/lifecycle/graceful-shutdown.ts). */
@Global()
@Module({
  providers: [DrainState],
  exports: [DrainState],
})
export class LifecycleModule {}
