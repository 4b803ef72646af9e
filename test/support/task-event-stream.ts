import { setTimeout as sleep } from 'node:timers/promises';
import { sampleTaskBytes } from './sample-task.js';
import { TestKafka } from './test-kafka.js';

/**
 * A steady stream of task updates on every partition of the source topic: `tasks` tasks, task i
 * on partition i % `partitions`; each round sends one update of every task, in one request, with
 * the round's number as the update number (`updateNumberOf` reads it back from the stored bytes).
 * Rounds follow each other (a round is acknowledged before the next is sent, so per task the
 * updates arrive in order) every `intervalMs`, until `stop` or `maxRounds`, whichever comes first.
 */
export class TaskEventStream {
  readonly taskIds: readonly string[];
  /** The last round acknowledged by Kafka: every task's last update. 0 once `seed` has run. */
  lastRound = -1;
  /** Events acknowledged by Kafka. */
  produced = 0;
  /** When each round was sent (Date.now()), by round. */
  readonly sentAt: number[] = [];
  private running = false;
  private loop: Promise<void> = Promise.resolve();

  constructor(
    private readonly kafka: TestKafka,
    private readonly topic: string,
    label: string,
    readonly partitions: number,
    { tasks = 30 }: { tasks?: number } = {},
  ) {
    this.taskIds = Array.from({ length: tasks }, (_, index) => `${label}-${index}`);
  }

  partitionOf(taskId: string): number {
    return this.taskIds.indexOf(taskId) % this.partitions;
  }

  tasksOn(partitions: readonly number[]): string[] {
    return this.taskIds.filter((taskId) => partitions.includes(this.partitionOf(taskId)));
  }

  /** Sends round 0: every task exists once it is applied. */
  async seed(): Promise<void> {
    await this.sendRound(0);
  }

  /** Sends a round every `intervalMs` in the background, `maxRounds` at most. */
  start({ intervalMs = 200, maxRounds = 600 }: { intervalMs?: number; maxRounds?: number } = {}): void {
    this.running = true;
    const last = this.lastRound + maxRounds;
    this.loop = (async () => {
      while (this.running && this.lastRound < last) {
        const started = Date.now();
        await this.sendRound(this.lastRound + 1);
        await sleep(Math.max(0, intervalMs - (Date.now() - started)));
      }
    })();
  }

  /** Stops after the round in flight; rejects if a send failed. */
  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  /** The first round sent at or after `time`. */
  firstRoundSentAfter(time: number): number | undefined {
    const round = this.sentAt.findIndex((at) => at >= time);
    return round === -1 ? undefined : round;
  }

  private async sendRound(round: number): Promise<void> {
    const messages = this.taskIds.map((taskId, index) => ({ key: taskId, value: sampleTaskBytes(taskId, round), partition: index % this.partitions }));
    this.sentAt[round] = Date.now();
    await this.kafka.send(this.topic, messages);
    this.lastRound = round;
    this.produced += messages.length;
  }
}
