import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Conductor's read API as the bridge uses it, in process: `GET /api/tasks/{id}` (204 for a task it
 * does not have, as Conductor OSS answers) and `GET /api/workflow/{id}?includeTasks=true`. Tests
 * set the tasks' bytes, make it fail (500) or slow, and see every request.
 */
export class FakeConductor {
  readonly tasks = new Map<string, Buffer>();
  readonly workflows = new Map<string, string[]>();
  readonly requests: string[] = [];
  /** Answers every request 500 while set. */
  failing = false;
  /** Milliseconds a task read waits before it is answered, per request (given the taskId). */
  delayMs: (taskId: string) => number = () => 0;
  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<FakeConductor> {
    let conductor!: FakeConductor;
    const server = createServer((req, res) => void conductor.answer(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    conductor = new FakeConductor(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    return conductor;
  }

  setTask(taskId: string, task: Record<string, unknown>): Buffer {
    const bytes = Buffer.from(JSON.stringify(task));
    this.tasks.set(taskId, bytes);
    return bytes;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private async answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '';
    this.requests.push(`${req.method} ${url}`);
    if (this.failing) return void res.writeHead(500).end('{"status":500}');
    const task = /^\/api\/tasks\/([^/?]+)$/.exec(url);
    if (req.method === 'GET' && task) {
      // Read when asked, answered after the delay: a slow read answers the task as it was, as a
      // read of a Conductor server that was slow to send its answer does.
      const taskId = decodeURIComponent(task[1]);
      const bytes = this.tasks.get(taskId);
      const delay = this.delayMs(taskId);
      if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
      if (bytes === undefined) return void res.writeHead(204).end();
      return void res.writeHead(200, { 'Content-Type': 'application/json' }).end(bytes);
    }
    const workflow = /^\/api\/workflow\/([^/?]+)\?includeTasks=true$/.exec(url);
    if (req.method === 'GET' && workflow) {
      const taskIds = this.workflows.get(decodeURIComponent(workflow[1]));
      if (taskIds === undefined) return void res.writeHead(404).end();
      const tasks = taskIds.map((taskId) => JSON.parse(this.tasks.get(taskId)?.toString() ?? `{"taskId":"${taskId}"}`) as unknown);
      return void res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ workflowId: workflow[1], status: 'COMPLETED', tasks }));
    }
    res.writeHead(404).end();
  }
}
