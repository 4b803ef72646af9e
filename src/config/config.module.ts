import { DynamicModule, Global, Module } from '@nestjs/common';
import { AppConfig, AuthConfig, BridgeConfig, HttpConfig, IngestConfig, KafkaConfig, LifecycleConfig, LogConfig, MetricsConfig, ProjectionConfig, RedisConfig } from './app-config.js';

/**
 * Provides each slice of the validated `AppConfig` (HttpConfig, KafkaConfig, RedisConfig,
 * ProjectionConfig, IngestConfig, AuthConfig, LifecycleConfig, LogConfig, MetricsConfig, and BridgeConfig when
 * the bridge is on) to every module, by its own class
 * token. The config is loaded before the application is created (see main.ts), so a bad value
 * stops the process before anything connects.
 */
@Global()
@Module({})
export class ConfigModule {
  static forRoot(config: AppConfig): DynamicModule {
    const providers = [
      { provide: HttpConfig, useValue: config.http },
      { provide: KafkaConfig, useValue: config.kafka },
      { provide: RedisConfig, useValue: config.redis },
      { provide: ProjectionConfig, useValue: config.projection },
      { provide: IngestConfig, useValue: config.ingest },
      { provide: AuthConfig, useValue: config.auth },
      { provide: LifecycleConfig, useValue: config.lifecycle },
      { provide: LogConfig, useValue: config.log },
      { provide: MetricsConfig, useValue: config.metrics },
      ...(config.bridge ? [{ provide: BridgeConfig, useValue: config.bridge }] : []),
    ];
    return { module: ConfigModule, providers, exports: providers.map((provider) => provider.provide) };
  }
}
