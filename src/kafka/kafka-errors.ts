/**
 * Whether an error from kafkajs may pass by starting the consumer again later: kafkajs's own
 * `retriable` flag, read through the wrappers kafkajs puts around the error that decided.
 *  - `KafkaJSNumberOfRetriesExceeded`: kafkajs's retries ran out on an error that may pass (a
 *    broker unreachable for longer than they last). Yes, as kafkajs's consumer restarts on it.
 *  - An aggregate (`KafkaJSAggregateError`, one error per topic of a CreateTopics): only if every
 *    error in it may pass.
 *  - Otherwise the innermost `cause`: no only when it says `retriable: false` (an authorization
 *    failure, an invalid replication factor), unless a restart clears it: a start is a new join, so
 *    the group-membership errors kafkajs answers by rejoining pass, and so does a broker that is not
 *    available. An error that says nothing may pass; src/retry gives up on programming errors
 *    (TypeError and its kin), but a restart rebuilds all of kafkajs's state, so here they are retried
 *    with the backoff, and logged.
 */
export function isRetriableKafkaError(error: unknown): boolean {
  if (!(error instanceof Error)) return true;
  // The outermost of these that says anything decides: a wrapper's own kind, else the innermost cause.
  const chain = causeChain(error);
  const decisive = chain.find((cause) => cause.name === 'KafkaJSNumberOfRetriesExceeded' || aggregated(cause) !== undefined) ?? chain.at(-1)!;
  if (decisive.name === 'KafkaJSNumberOfRetriesExceeded') return true;
  const errors = aggregated(decisive);
  if (errors) return errors.every(isRetriableKafkaError);
  const { retriable, type } = decisive as { retriable?: unknown; type?: unknown };
  return retriable !== false || (typeof type === 'string' && CLEARED_BY_A_RESTART.has(type));
}

/** The errors a `KafkaJSAggregateError` (one per topic of a CreateTopics) holds, if it is one. */
function aggregated(error: Error): unknown[] | undefined {
  const errors = (error as { errors?: unknown }).errors;
  return Array.isArray(errors) && errors.length > 0 ? errors : undefined;
}

/** Broker errors kafkajs flags as not retriable that a new start (a new join) clears. */
const CLEARED_BY_A_RESTART = new Set([
  'REBALANCE_IN_PROGRESS',
  'ILLEGAL_GENERATION',
  'UNKNOWN_MEMBER_ID',
  'MEMBER_ID_REQUIRED',
  'BROKER_NOT_AVAILABLE',
]);

/**
 * The error as one line an operator can act on: an aggregate names each topic's error, and a
 * known misconfiguration says which setting to look at.
 */
export function describeKafkaError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const errors = aggregated(error);
  if (errors) return errors.map(describeKafkaError).join('; ');
  const root = causeChain(error).at(-1)!;
  const { type, topic } = root as { type?: unknown; topic?: unknown };
  const where = typeof topic === 'string' ? `topic ${topic}: ` : '';
  const what = typeof type === 'string' ? `${type} (${root.message})` : root.message;
  const hint = typeof type === 'string' ? HINTS[type] : undefined;
  return `${where}${what}${hint ? `; ${hint}` : ''}`;
}

/** What to check, for the non-retriable errors a misconfigured deployment meets. */
const HINTS: Record<string, string> = {
  INVALID_REPLICATION_FACTOR: 'KAFKA_REPLICATION_FACTOR is larger than the number of brokers in the cluster',
  INVALID_PARTITIONS: 'KAFKA_TOPIC_PARTITIONS must be at least 1',
  POLICY_VIOLATION: "the cluster's topic policy refuses the topic as configured (KAFKA_TOPIC_PARTITIONS, KAFKA_REPLICATION_FACTOR)",
  TOPIC_AUTHORIZATION_FAILED: "the service's Kafka principal needs Describe, Create and Read on the topics and Write on the dead-letter topic",
  GROUP_AUTHORIZATION_FAILED: "the service's Kafka principal needs Read on the consumer group (KAFKA_GROUP_ID)",
  CLUSTER_AUTHORIZATION_FAILED: "the service's Kafka principal needs Create on the cluster, or the topics must exist beforehand",
  INVALID_TOPIC_EXCEPTION: 'KAFKA_TOPIC or KAFKA_DLQ_TOPIC is not a valid topic name',
  UNSUPPORTED_VERSION: 'the broker is too old for this client',
};

/** `error` and the errors it wraps, outermost first; at most 10, whatever a cycle of causes. */
export function causeChain(error: Error): Error[] {
  const chain = [error];
  for (let cause = error.cause; cause instanceof Error && chain.length < 10 && !chain.includes(cause); cause = cause.cause) chain.push(cause);
  return chain;
}

