import { Module } from '@nestjs/common';
import { ProjectionModule } from '../projection/projection.module.js';
import { InstanceGauges } from './instance-gauges.js';
import { MetricsServer } from './metrics-server.js';

/** `/metrics` on METRICS_PORT, with the gauges of the instance's state. The service's only. */
@Module({
  imports: [ProjectionModule],
  providers: [InstanceGauges, MetricsServer],
})
export class MetricsServerModule {}
