import { Global, Module } from '@nestjs/common';
import { IngestState } from './ingest-state.js';
import { KafkaClient } from './kafka-client.js';
import { TopicProvisioner } from './topic-provisioner.js';

@Global()
@Module({
  providers: [KafkaClient, TopicProvisioner, IngestState],
  exports: [KafkaClient, TopicProvisioner, IngestState],
})
export class KafkaModule {}
