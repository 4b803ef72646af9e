/**
 * Tells every instance which tasks ingest has just changed, so that the requests watching them
 * (`Prefer: wait`) are answered at once. Best effort by design: a change whose notice is lost is
 * still found by the watcher's re-read when its wait ends, and after every resubscription.
 */
export abstract class TaskChangeNotifier {
  /** Announces `taskIds` (each once) as changed; never rejects. */
  abstract notify(taskIds: readonly string[]): void;
}

/** For a process that serves no watchers (the rebuild): nothing is announced. */
export class NoTaskChangeNotifier extends TaskChangeNotifier {
  notify(): void {}
}
