import { Injectable } from '@nestjs/common';
import { BridgeConfig } from '../config/app-config.js';
import { MAX_VALUE_BYTES } from '../ingest/task-event-decoder.js';
import { isValidTaskId } from '../projection/task-id.js';
import { ConductorUnavailableError } from './conductor-unavailable.error.js';

/** A workflow is read for its tasks' ids only; anything bigger than this is refused. */
const MAX_WORKFLOW_BYTES = 16 * 1024 * 1024;

/** Conductor answered what no retry will change: a task over the event contract's size limit. */
export class ConductorRefusedError extends Error {}

/**
 * Reads tasks and workflows from Conductor's REST API (Conductor OSS, or Orkes with an access key
 * exchanged for a token at POST /api/token, renewed when refused). Every request is bounded by
 * CONDUCTOR_TIMEOUT_MS and its answer by a size; anything unexpected is a
 * `ConductorUnavailableError`, retryable.
 */
@Injectable()
export class ConductorClient {
  private token: Promise<string> | undefined;

  constructor(private readonly config: BridgeConfig) {}

  /**
   * The task's JSON exactly as `GET /api/tasks/{taskId}` answers it, or null when Conductor has no
   * such task (204, as Conductor OSS answers, or 404).
   */
  async getTask(taskId: string): Promise<Buffer | null> {
    const path = `/api/tasks/${encodeURIComponent(taskId)}`;
    const answer = await this.get(path, MAX_VALUE_BYTES, (size) => new ConductorRefusedError(`task ${taskId} is over ${MAX_VALUE_BYTES} bytes (${size}), the event contract's limit: not produced`));
    if (answer === null) return null;
    if (answer[0] !== 0x7b) throw new ConductorUnavailableError(`GET /api/tasks/${taskId} answered something other than a JSON object`);
    return answer;
  }

  /** The ids of a workflow's tasks (`GET /api/workflow/{id}?includeTasks=true`), or null when there is no such workflow. */
  async getWorkflowTaskIds(workflowId: string): Promise<string[] | null> {
    const answer = await this.get(`/api/workflow/${encodeURIComponent(workflowId)}?includeTasks=true`, MAX_WORKFLOW_BYTES);
    if (answer === null) return null;
    let workflow: unknown;
    try {
      workflow = JSON.parse(answer.toString('utf8'));
    } catch {
      throw new ConductorUnavailableError(`GET /api/workflow/${workflowId} answered malformed JSON`);
    }
    const tasks = (workflow as { tasks?: unknown } | null)?.tasks;
    if (!Array.isArray(tasks)) return [];
    // An id the event contract refuses could be neither produced nor served.
    return tasks.map((task) => (task as { taskId?: unknown } | null)?.taskId).filter((taskId): taskId is string => typeof taskId === 'string' && isValidTaskId(taskId));
  }

  /**
   * The body of a 200, null for a 204 or 404; a `ConductorUnavailableError` for anything else (a
   * `tooLarge` error for a body over `limitBytes`, when given). Retries once with a new token when
   * refused (Orkes). The whole exchange, body included, is bounded by CONDUCTOR_TIMEOUT_MS.
   */
  private async get(path: string, limitBytes: number, tooLarge?: (size: number) => Error, renewed = false): Promise<Buffer | null> {
    const headers: Record<string, string> = { Accept: 'application/json' };
    const token = this.config.conductorKey ? this.authToken() : undefined;
    let response: Response | undefined;
    try {
      if (token !== undefined) headers['X-Authorization'] = await token;
      response = await fetch(`${this.config.conductorUrl}${path}`, { headers, signal: AbortSignal.timeout(this.config.conductorTimeoutMs) });
      if (response.status === 204 || response.status === 404) return null;
      if ((response.status === 401 || response.status === 403) && token !== undefined && !renewed) {
        // Renewed once for all: a token another request has renewed meanwhile is kept.
        if (this.token === token) this.token = undefined;
        return await this.get(path, limitBytes, tooLarge, true);
      }
      if (response.status !== 200) throw new ConductorUnavailableError(`GET ${path} answered ${response.status}`);
      return await readLimited(response, limitBytes, path, tooLarge);
    } catch (error) {
      if (error instanceof ConductorUnavailableError || error instanceof ConductorRefusedError) throw error;
      throw new ConductorUnavailableError(`GET ${path} failed: ${reason(error)}`, { cause: error });
    } finally {
      // A body not read (an error answer) is released, so that its connection can be reused.
      await response?.body?.cancel().catch(() => undefined);
    }
  }

  /** Orkes: the key exchanged for a token once, shared by concurrent requests, renewed when refused. */
  private authToken(): Promise<string> {
    this.token ??= this.exchangeKey().catch((error: unknown) => {
      this.token = undefined;
      throw error;
    });
    return this.token;
  }

  private async exchangeKey(): Promise<string> {
    const key = this.config.conductorKey!;
    let response: Response;
    try {
      response = await fetch(`${this.config.conductorUrl}/api/token`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify({ keyId: key.id, keySecret: key.secret }),
        signal: AbortSignal.timeout(this.config.conductorTimeoutMs),
      });
    } catch (error) {
      throw new ConductorUnavailableError(`POST /api/token failed: ${reason(error)}`, { cause: error });
    }
    if (response.status !== 200) {
      await response.body?.cancel().catch(() => undefined);
      throw new ConductorUnavailableError(`POST /api/token answered ${response.status}: check CONDUCTOR_KEY_ID and CONDUCTOR_KEY_SECRET`);
    }
    let token: unknown;
    try {
      token = (JSON.parse((await readLimited(response, 64 * 1024, '/api/token')).toString('utf8')) as { token?: unknown } | null)?.token;
    } catch (error) {
      if (error instanceof ConductorUnavailableError) throw error;
      throw new ConductorUnavailableError(`POST /api/token failed: ${reason(error)}`, { cause: error });
    }
    if (typeof token !== 'string' || token === '') throw new ConductorUnavailableError('POST /api/token answered no token');
    return token;
  }
}

/** The response body, refusing one over `limitBytes` without reading the rest. */
async function readLimited(response: Response, limitBytes: number, path: string, tooLarge?: (size: number) => Error): Promise<Buffer> {
  const over = (size: number) => tooLarge?.(size) ?? new ConductorUnavailableError(`GET ${path} answered more than ${limitBytes} bytes`);
  const declared = Number(response.headers.get('content-length'));
  if (declared > limitBytes) throw over(declared);
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (response.body) {
    for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
      size += chunk.length;
      if (size > limitBytes) throw over(size);
      chunks.push(chunk);
    }
  }
  return Buffer.concat(chunks);
}

function reason(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as Error & { cause?: unknown }).cause;
    return cause instanceof Error ? `${error.message} (${cause.message})` : error.message;
  }
  return String(error);
}
