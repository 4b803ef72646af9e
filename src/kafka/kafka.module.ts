import { Global, Module } from '@nestjs/common';
import { KafkaClient } from './kafka-client.js';
import { TopicProvisioner } from './topic-provisioner.js';

@Global()
@Module({
  providers: [KafkaClient, TopicProvisioner],
  exports: [KafkaClient, TopicProvisioner],
})
export class KafkaModule {}
