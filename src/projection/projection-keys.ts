/**
 * The Redis key layout. Every operation touches a single key, so the same code runs on Redis Cluster.
 *   {prefix}projection                     hash { current, building }: the generation pointer
 *   {prefix}g:{gen}:task:{taskId}          hash { v, p, o, t }: one task in one generation
 */
export class ProjectionKeys {
  readonly generationPointer: string;
  private readonly prefix: string;

  constructor(prefix: string) {
    this.prefix = prefix;
    this.generationPointer = `${prefix}projection`;
  }

  taskPrefix(generation: number): string {
    return `${this.prefix}g:${generation}:task:`;
  }

  task(generation: number, taskId: string): string {
    return this.taskPrefix(generation) + taskId;
  }
}
