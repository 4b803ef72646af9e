import kafkajs from 'kafkajs';
import { describeKafkaError, isRetriableKafkaError } from './kafka-errors.js';

/** A protocol error as kafkajs builds it from a broker's error code (protocol/error.js). */
const brokerError = (type: string, message: string, retriable: boolean) =>
  new kafkajs.KafkaJSProtocolError(Object.assign(new Error(message), { type, retriable }));
/** kafkajs's retrier hands on errors wrapped this way (retry/index.js). */
const wrapped = (Wrapper: typeof kafkajs.KafkaJSNonRetriableError, error: Error) =>
  Reflect.construct(Wrapper, [error, { cause: error, retryCount: 8, retryTime: 5000 }]) as Error;

describe('isRetriableKafkaError', () => {
  const refused = new kafkajs.KafkaJSConnectionError('Connection error: connect ECONNREFUSED 127.0.0.1:9092');
  const invalidReplication = brokerError('INVALID_REPLICATION_FACTOR', 'Replication-factor is invalid', false);

  it.each([
    ['a connection error', refused, true],
    ['retries run out on a connection error', wrapped(kafkajs.KafkaJSNumberOfRetriesExceeded, refused), true],
    ['a retriable broker error', brokerError('COORDINATOR_LOAD_IN_PROGRESS', 'loading', true), true],
    ['an error that says nothing (kafkajs retries it)', new Error('something'), true],
    ['a value that is not an error', 'boom', true],
    ['a non-retriable broker error', invalidReplication, false],
    ['a non-retriable error handed on by the retrier', wrapped(kafkajs.KafkaJSNonRetriableError, invalidReplication), false],
    ['a programming error (a restart rebuilds kafkajs\'s state)', new TypeError("Cannot read properties of undefined (reading 'x')"), true],
    ['a group-membership error a new join clears', brokerError('UNKNOWN_MEMBER_ID', 'The coordinator is not aware of this member', false), true],
    ['a rebalance', brokerError('REBALANCE_IN_PROGRESS', 'The group is rebalancing, so a rejoin is needed', false), true],
    ['an authorization failure', brokerError('GROUP_AUTHORIZATION_FAILED', 'Not authorized to access group', false), false],
    ['a topic creation where one topic cannot be created', new kafkajs.KafkaJSAggregateError('Topic creation errors', [brokerError('TOPIC_ALREADY_EXISTS', 'exists', false), invalidReplication]), false],
    ['a topic creation that may pass for every topic', new kafkajs.KafkaJSAggregateError('Topic creation errors', [brokerError('NOT_CONTROLLER', 'moved', true)]), true],
  ])('%s', (_, error, retriable) => {
    expect(isRetriableKafkaError(error)).toBe(retriable);
  });
});

describe('describeKafkaError', () => {
  it('names the topic, the broker error and the setting to check', () => {
    const error = Object.assign(brokerError('INVALID_REPLICATION_FACTOR', 'Replication-factor is invalid', false), { topic: 'tasks' });
    expect(describeKafkaError(new kafkajs.KafkaJSAggregateError('Topic creation errors', [error]))).toBe(
      'topic tasks: INVALID_REPLICATION_FACTOR (Replication-factor is invalid); KAFKA_REPLICATION_FACTOR is larger than the number of brokers in the cluster',
    );
  });

  it('reads through the wrappers to the error that decided', () => {
    const refused = new kafkajs.KafkaJSConnectionError('Connection error: connect ECONNREFUSED 127.0.0.1:9092');
    expect(describeKafkaError(wrapped(kafkajs.KafkaJSNumberOfRetriesExceeded, refused))).toBe('Connection error: connect ECONNREFUSED 127.0.0.1:9092');
  });

  it('does not follow a cause chain forever', () => {
    const a = new Error('a');
    const b = new Error('b', { cause: a });
    Object.assign(a, { cause: b });
    expect(typeof describeKafkaError(b)).toBe('string');
    expect(typeof isRetriableKafkaError(b)).toBe('boolean');
  });
});
