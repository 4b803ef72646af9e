/**
 * The Redis key layout. Every operation touches a single key, so the same code runs on Redis Cluster.
 *   {prefix}projection                     hash: the generation pointer { current, building, previous,
 *                                          last } and the rebuild's lock and state (generation-pointer.lua)
 *   {prefix}g:{gen}:task:{taskId}          hash { v, p, o, t }: one task in one generation
 *   {prefix}instance:{id}                  string with a TTL: a running instance's heartbeat, saying
 *                                          which generations it reads and writes
 *   {prefix}instance-index                 sorted set: the ids of the instances that sent a heartbeat
 *                                          in the last day, by when they last did
 * Pub/sub channel {prefix}projection: the pointer changed; every instance re-reads it.
 */
export class ProjectionKeys {
  readonly generationPointer: string;
  readonly pointerChannel: string;
  readonly instances: string;
  private readonly prefix: string;

  constructor(prefix: string) {
    this.prefix = prefix;
    this.generationPointer = `${prefix}projection`;
    this.pointerChannel = `${prefix}projection`;
    this.instances = `${prefix}instance-index`;
  }

  taskPrefix(generation: number): string {
    return `${this.prefix}g:${generation}:task:`;
  }

  task(generation: number, taskId: string): string {
    return this.taskPrefix(generation) + taskId;
  }

  /** A SCAN MATCH pattern for every task key of one generation, the prefix's own glob characters escaped. */
  generationPattern(generation: number): string {
    return `${this.taskPrefix(generation).replace(/[*?[\]\\]/g, '\\$&')}*`;
  }

  instance(id: string): string {
    return `${this.prefix}instance:${id}`;
  }
}
