import { Global, Module } from '@nestjs/common';
import { IngestState } from './ingest-state.js';
import { KafkaClient } from './kafka-client.js';
import { StartupCatchUp } from './startup-catch-up.js';
import { TopicProvisioner } from './topic-provisioner.js';

@Global()
@Module({
  providers: [KafkaClient, TopicProvisioner, IngestState, StartupCatchUp],
  exports: [KafkaClient, TopicProvisioner, IngestState, StartupCatchUp],
})
export class KafkaModule {}
