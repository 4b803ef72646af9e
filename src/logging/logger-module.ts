import { DynamicModule, Type } from '@nestjs/common';
import { LoggerModule } from 'nestjs-pino';
import type { DestinationStream } from 'pino';
import { LogConfig } from '../config/app-config.js';
import { pinoHttpOptions } from './pino-settings.js';

/**
 * nestjs-pino's module with the service's settings, writing to `destination`. Its `Logger` is the
 * application's logger (`app.useLogger`), so every `new Logger(context)` writes through pino:
 * `logger.warn({ topic, partition, offset }, 'text')` is one line with those fields, the text as
 * `msg` and the context as `context`; an error under `err` is written with its stack.
 *
 * A line logged while one of `controllers` handles a request carries the request's id (pino-http's
 * middleware, on their routes only). nestjs-pino's default, a wildcard route over every path, would
 * change what Express answers: it decodes the path as a route parameter, so a path that is not
 * valid percent-encoding (`/%zz`) would be refused with a 400 instead of the 404 of an unknown route.
 *
 * nestjs-pino builds one pino logger per process, with the settings of the first application
 * created in it: a process runs one, but tests that create several in one file share the first's.
 */
export function loggerModule(log: LogConfig, destination: DestinationStream, controllers: Type[] = []): DynamicModule {
  return LoggerModule.forRoot({ pinoHttp: [pinoHttpOptions(log), destination], forRoutes: controllers });
}
