/** A wrong answer (bytes, status, a missing event): the benchmark's figures would mean nothing. */
export class CorrectnessFailure extends Error {
  constructor(message) {
    super(message);
    this.name = 'CorrectnessFailure';
  }
}

export function assertCorrect(condition, message) {
  if (!condition) throw new CorrectnessFailure(message);
}
