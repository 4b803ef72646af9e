import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { ProjectionModule } from '../projection/projection.module.js';
import { HealthController } from './health.controller.js';
import { ReadinessIndicators } from './readiness-indicators.js';

/**
 * Health endpoints (Terminus). Its own logging is off: balancers check every second or two, and
 * the controller says when readiness changes. Nothing imports this module.
 */
@Module({
  imports: [TerminusModule.forRoot({ logger: false }), ProjectionModule],
  controllers: [HealthController],
  providers: [ReadinessIndicators],
})
export class HealthModule {}
