import type { HealthCheckStatus, HealthIndicatorStatus } from '@nestjs/terminus';
import type { HeaderObject, SchemaObject } from '@nestjs/swagger';
import { ApiDocsPart, schemaRef } from '../openapi/api-docs-part.js';

const HEALTH_CHECK_RESULT = 'HealthCheckResult';

const INDICATOR_STATUSES = ['up', 'degraded', 'down'] as const satisfies readonly HealthIndicatorStatus[];

const checks = (description: string): SchemaObject => ({
  type: 'object',
  description,
  additionalProperties: {
    type: 'object',
    required: ['status'],
    properties: {
      status: { type: 'string', enum: [...INDICATOR_STATUSES] },
      message: { type: 'string', description: 'Why the check is down, or degraded.' },
    },
    additionalProperties: true,
  },
});

/** Terminus's body, as both health endpoints answer. */
const HEALTH_CHECK_RESULT_SCHEMA: SchemaObject = {
  type: 'object',
  description: "Terminus's health check result: each check by name, with its status and what it reports.",
  required: ['status', 'info', 'error', 'details'],
  properties: {
    status: { type: 'string', enum: ['ok', 'degraded', 'error', 'shutting_down'] satisfies HealthCheckStatus[] },
    info: checks('The checks that are up or degraded.'),
    error: checks('The checks that are down.'),
    details: checks('Every check.'),
  },
};

export const HEALTH_API_DOCS: ApiDocsPart = { schemas: { [HEALTH_CHECK_RESULT]: HEALTH_CHECK_RESULT_SCHEMA } };

const NO_STORE: HeaderObject = { description: 'Health answers are never cached.', schema: { type: 'string', enum: ['no-store'] } };

/** A health endpoint's response (for @ApiResponse): the result, its overall status one of `statuses`. */
export function healthResponse(description: string, statuses: HealthCheckStatus[]) {
  return {
    description,
    headers: { 'Cache-Control': NO_STORE },
    schema: { allOf: [schemaRef(HEALTH_CHECK_RESULT), { type: 'object', properties: { status: { type: 'string', enum: statuses } } }] },
  };
}
