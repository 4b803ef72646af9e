import { Injectable } from '@nestjs/common';
import { BridgeConfig } from '../config/app-config.js';
import { MAX_VALUE_BYTES } from '../ingest/task-event-decoder.js';
import { isValidTaskId } from '../projection/task-id.js';
import { ConductorUnavailableError } from './conductor-unavailable.error.js';

/** A workflow is read for its tasks' ids only; anything bigger than this is refused. */
const MAX_WORKFLOW_BYTES = 64 * 1024 * 1024;

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
    const answer = await this.get(`/api/tasks/${encodeURIComponent(taskId)}`, MAX_VALUE_BYTES);
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

  /** The body of a 200, null for a 204 or 404; throws for anything else. Retries once with a new token when refused (Orkes). */
  private async get(path: string, limitBytes: number, renewed = false): Promise<Buffer | null> {
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (this.config.conductorKey) headers['X-Authorization'] = await this.authToken();
    let response: Response;
    try {
      response = await fetch(`${this.config.conductorUrl}${path}`, { headers, signal: AbortSignal.timeout(this.config.conductorTimeoutMs) });
    } catch (error) {
      throw new ConductorUnavailableError(`GET ${path} failed: ${reason(error)}`, { cause: error });
    }
    try {
      if (response.status === 204 || response.status === 404) return null;
      if ((response.status === 401 || response.status === 403) && this.config.conductorKey && !renewed) {
        this.token = undefined;
        return await this.get(path, limitBytes, true);
      }
      if (response.status !== 200) throw new ConductorUnavailableError(`GET ${path} answered ${response.status}`);
      return await readLimited(response, limitBytes, path);
    } finally {
      // A body not read (an error answer) is released, so that its connection can be reused.
      await response.body?.cancel().catch(() => undefined);
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
    const body = (await readLimited(response, 64 * 1024, '/api/token')).toString('utf8');
    const token = (JSON.parse(body) as { token?: unknown }).token;
    if (typeof token !== 'string' || token === '') throw new ConductorUnavailableError('POST /api/token answered no token');
    return token;
  }
}

/** The response body, refusing one over `limitBytes` without reading the rest. */
async function readLimited(response: Response, limitBytes: number, path: string): Promise<Buffer> {
  if (Number(response.headers.get('content-length')) > limitBytes) throw new ConductorUnavailableError(`GET ${path} answered more than ${limitBytes} bytes`);
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (response.body) {
    for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
      size += chunk.length;
      if (size > limitBytes) throw new ConductorUnavailableError(`GET ${path} answered more than ${limitBytes} bytes`);
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
