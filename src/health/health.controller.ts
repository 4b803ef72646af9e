import { ServerResponse } from 'node:http';
import { Controller, Get, Logger, Res, ServiceUnavailableException } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import { HealthCheckResult, HealthCheckService, HealthIndicatorService } from '@nestjs/terminus';
import { Public } from '../auth/public.decorator.js';
import { healthResponse } from './health.openapi.js';
import { REDIS_PING_TIMEOUT_MS, ReadinessIndicators } from './readiness-indicators.js';

/**
 * GET /health/live and GET /health/ready, public, for load balancers and orchestrators. Bodies are
 * Terminus's: `{ status, info, error, details }`, each check by name.
 */
@Public()
@ApiTags('health')
@Controller('health')
export class HealthController {
  private readonly logger = new Logger('Readiness');
  private lastStatus: HealthCheckResult['status'] | undefined;

  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    private readonly readiness: ReadinessIndicators,
  ) {}

  /** 200 while the process answers, shutting down included: nothing here is worth a restart. */
  @Get('live')
  @ApiOperation({ operationId: 'live', summary: 'Liveness: the process answers' })
  @ApiOkResponse(healthResponse('The process answers (shutting down included). `process`: pid and uptime.', ['ok']))
  live(@Res() res: ServerResponse): void {
    const up = this.indicators.check('process').up({ pid: process.pid, uptimeSeconds: Math.round(process.uptime()) });
    send(res, 200, { status: 'ok', info: up, error: {}, details: up });
  }

  /** 200 when this instance answers reads correctly; 503 naming the failing checks otherwise. */
  @Get('ready')
  @ApiOperation({
    operationId: 'ready',
    summary: 'Readiness: this instance answers reads correctly',
    description:
      `Checks \`drain\` (not shutting down), \`redis\` (answers a PING within ${REDIS_PING_TIMEOUT_MS} ms) and \`projection\` (the generation is known, and the projection has caught up with the source topic as it was at start). \`kafka\` reports the consumer: \`degraded\`, never \`down\`, while it cannot reach Kafka.`,
  })
  @ApiOkResponse(healthResponse('Ready; `degraded` while the Kafka consumer cannot reach Kafka (reads are served from Redis).', ['ok', 'degraded']))
  @ApiServiceUnavailableResponse(healthResponse('Not ready: the checks that are down are under `error`.', ['error', 'shutting_down']))
  async ready(@Res() res: ServerResponse): Promise<void> {
    let status = 200;
    let result: HealthCheckResult;
    try {
      result = await this.health.check(this.readiness.all());
    } catch (error) {
      if (!(error instanceof ServiceUnavailableException)) throw error;
      status = 503;
      result = error.getResponse() as HealthCheckResult;
    }
    this.logChange(result);
    send(res, status, result);
  }

  /** Balancers ask every second or two: say only when the answer changes. */
  private logChange(result: HealthCheckResult): void {
    if (result.status === this.lastStatus) return;
    this.lastStatus = result.status;
    const failing = Object.entries(result.error ?? {}).map(([name, detail]) => `${name} (${String(detail?.message ?? 'down')})`);
    if (failing.length === 0) this.logger.log(`ready (${result.status})`);
    else this.logger.warn(`not ready: ${failing.join(', ')}`);
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const bytes = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': bytes.length, 'Cache-Control': 'no-store' });
  res.end(bytes);
}
