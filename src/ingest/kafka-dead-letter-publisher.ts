import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import kafkajs from 'kafkajs';
import type { IHeaders, Message, Producer } from 'kafkajs';
import { KafkaConfig } from '../config/app-config.js';
import { KafkaClient } from '../kafka/kafka-client.js';
import { TaskCacheMetrics } from '../metrics/task-cache-metrics.js';
import { causeChain } from '../kafka/kafka-errors.js';
import { encodesAsRecord, LinearDefaultPartitioner } from '../kafka/kafkajs-hardening.js';
import { DeadLetter } from './dead-letter.js';
import { DeadLetterPublisher } from './dead-letter-publisher.js';

const { CompressionTypes } = kafkajs;

/** Broker answers that refuse a record for what it is, so sending it again unchanged cannot help. */
const REFUSED_BY_BROKER = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE', 'INVALID_RECORD', 'CORRUPT_MESSAGE']);

/** What a dead letter still carries, from whole down to the least that says where the event is. */
type Rung = 'whole' | 'without value' | 'without value and headers';
const RUNGS: readonly Rung[] = ['whole', 'without value', 'without value and headers'];

/**
 * Letters per produce request. kafkajs groups a send's messages by partition in time that grows
 * with the square of their number (producer/groupMessagesPerPartition.js: 30,000 messages held the
 * process 5 s), and a batch of small invalid events may hold hundreds of thousands.
 */
const LETTERS_PER_REQUEST = 500;
/** Dead letters of one publish logged one by one; the others are counted in one line. */
const LETTERS_LOGGED_PER_PUBLISH = 20;

/**
 * `DeadLetterPublisher` on Kafka: dead letters go to `KAFKA_DLQ_TOPIC`, keyed as the source
 * event was. Delivery is at least once, like everything else in ingest: a publish that fails
 * part-way is repeated whole.
 *
 * A dead letter always ends somewhere. One the topic refuses for what it is (too large), or that
 * kafkajs could not encode (checked before sending), is sent again with less: first without its
 * value, then also without its original headers, each omission named in an `x-dlq-*` header; the
 * original stays readable in the source topic at the offset the headers give. If even the key and the `x-dlq-*` headers are
 * refused, the letter is logged at error with its coordinates and counted, and ingest moves on.
 * Only a failure that is not about the record (the topic unreachable, a timeout, no permission)
 * rejects, so that ingest holds the partition and retries.
 */
@Injectable()
export class KafkaDeadLetterPublisher extends DeadLetterPublisher implements OnApplicationShutdown {
  private readonly logger = new Logger('DeadLetters');
  private readonly producer: Producer;
  private readonly topic: string;
  private connected: Promise<void> | undefined;
  private undeliverableCount = 0;

  constructor(
    client: KafkaClient,
    config: KafkaConfig,
    private readonly metrics: TaskCacheMetrics = new TaskCacheMetrics({}),
  ) {
    super();
    this.topic = config.dlqTopic;
    this.producer = client.kafka.producer({
      allowAutoTopicCreation: false,
      // A dead letter keeps its event's key, however long: kafkajs's own hash is quadratic in it.
      createPartitioner: LinearDefaultPartitioner,
      // Few retries here: ingest retries the whole step with its own backoff and stays stoppable.
      retry: { retries: 2 },
    });
  }

  /** Dead letters the topic refused even without value and headers, since the service started. */
  get undeliverable(): number {
    return this.undeliverableCount;
  }

  async publish(letters: readonly DeadLetter[], heartbeat: () => Promise<void> = async () => undefined): Promise<void> {
    if (letters.length === 0) return;
    await this.connect();
    const sent = new Map<DeadLetter, Rung | undefined>();
    // One letter kafkajs cannot encode would fail the whole request it joins.
    const encodable: DeadLetter[] = [];
    for (const letter of letters) {
      if (encodesAsRecord(toDeadLetterMessage(letter, 'whole'))) encodable.push(letter);
      else sent.set(letter, await this.sendAlone(letter, heartbeat));
    }
    for (let start = 0; start < encodable.length; start += LETTERS_PER_REQUEST) {
      if (start > 0) await heartbeat();
      await this.sendGroup(encodable.slice(start, start + LETTERS_PER_REQUEST), sent, heartbeat);
    }
    this.report(sent);
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.connected) await this.producer.disconnect().catch(() => undefined);
  }

  /**
   * Sends the letters whole in one request. If the topic refuses it, the halves are sent on their
   * own, down to the one letter that is refused: one refused letter among N costs about 2 log2 N
   * requests, not N, and the consumer heartbeats between them.
   */
  private async sendGroup(letters: readonly DeadLetter[], sent: Map<DeadLetter, Rung | undefined>, heartbeat: () => Promise<void>): Promise<void> {
    if (letters.length === 1) {
      sent.set(letters[0], await this.sendAlone(letters[0], heartbeat));
      return;
    }
    try {
      await this.send(letters.map((letter) => toDeadLetterMessage(letter, 'whole')));
      for (const letter of letters) sent.set(letter, 'whole');
    } catch (error) {
      if (!isRefusedRecord(error)) throw error;
      await heartbeat();
      const half = Math.ceil(letters.length / 2);
      await this.sendGroup(letters.slice(0, half), sent, heartbeat);
      await this.sendGroup(letters.slice(half), sent, heartbeat);
    }
  }

  private connect(): Promise<void> {
    this.connected ??= this.producer.connect().catch((error: unknown) => {
      this.connected = undefined;
      throw error;
    });
    return this.connected;
  }

  private async send(messages: Message[]): Promise<void> {
    // Compressed: a dead letter can be as large as the source topic allows (values over the 1 MiB
    // limit are dead letters themselves), and the DLQ takes 1 MiB + 64 KiB per message.
    await this.producer.send({ topic: this.topic, compression: CompressionTypes.GZIP, messages });
  }

  /** Sends one letter with as much as the topic takes; undefined if it takes none of it. */
  private async sendAlone(letter: DeadLetter, heartbeat: () => Promise<void>): Promise<Rung | undefined> {
    let refusal: unknown;
    for (const rung of RUNGS) {
      if (rung === 'without value' && letter.message.value === null) continue;
      const message = toDeadLetterMessage(letter, rung);
      if (!encodesAsRecord(message)) {
        refusal = new Error('kafkajs cannot encode it');
        continue;
      }
      try {
        await this.send([message]);
        return rung;
      } catch (error) {
        if (!isRefusedRecord(error)) throw error;
        refusal = error;
        await heartbeat();
      }
    }
    this.undeliverableCount += 1;
    this.logger.error(
      { ...coordinates(letter), err: refusal },
      `dead letter refused by ${this.topic} even without value and headers, skipped (${this.undeliverableCount} so far): ` +
        `${where(letter)}: ${letter.reason}; the event stays in the source topic; ${describe(refusal)}`,
    );
    return undefined;
  }

  /**
   * Counts every letter by its reason code, delivered or not. Logs one line per dead letter, for the
   * first LETTERS_LOGGED_PER_PUBLISH; the rest of the publish in one line counting them by reason,
   * so that a batch of 200,000 invalid events logs 21 lines.
   */
  private report(sent: Map<DeadLetter, Rung | undefined>): void {
    for (const [letter, rung] of sent) {
      (rung === undefined ? this.metrics.deadLettersUndeliverable : this.metrics.eventsDeadLettered).inc({ reason: reasonCode(letter.reason) });
    }
    const delivered = [...sent].filter((entry): entry is [DeadLetter, Rung] => entry[1] !== undefined);
    for (const [letter, rung] of delivered.slice(0, LETTERS_LOGGED_PER_PUBLISH)) {
      const note = rung === 'whole' ? '' : ` (sent ${rung}: too large or unencodable for ${this.topic})`;
      this.logger.warn(coordinates(letter), `dead-lettered ${where(letter)}: ${letter.reason}${note}`);
    }
    const rest = delivered.slice(LETTERS_LOGGED_PER_PUBLISH).map(([letter]) => letter);
    if (rest.length === 0) return;
    const byCode = new Map<string, number>();
    for (const { reason } of rest) {
      const code = reasonCode(reason);
      byCode.set(code, (byCode.get(code) ?? 0) + 1);
    }
    const codes = [...byCode].map(([code, count]) => `${code} ${count}`).join(', ');
    const partitions = [...new Set(rest.map(({ topic, partition }) => `${topic} partition ${partition}`))].join(', ');
    this.logger.warn({ ...span(rest), count: rest.length }, `dead-lettered ${rest.length} more of ${partitions}, by reason: ${codes}`);
  }
}

/** The stable code a reason starts with (`INVALID_JSON: ...`): bounded, so it can label a metric. */
function reasonCode(reason: string): string {
  return reason.split(':', 1)[0];
}

/** Where a letter's event is, as fields of a log line. */
function coordinates(letter: DeadLetter): { topic: string; partition: number; offset: string } {
  return { topic: letter.topic, partition: letter.partition, offset: letter.message.offset };
}

/**
 * Where letters counted in one line are, as fields: their topic, partition, first offset and last
 * (`lastOffset`). A publish holds one batch, so one partition; letters of several have no one place.
 */
function span(letters: readonly DeadLetter[]): { topic: string; partition: number; offset: string; lastOffset: string } | Record<string, never> {
  const [first] = letters;
  if (letters.some((letter) => letter.topic !== first.topic || letter.partition !== first.partition)) return {};
  let low = first.message.offset;
  let high = low;
  for (const { message } of letters) {
    if (BigInt(message.offset) < BigInt(low)) low = message.offset;
    if (BigInt(message.offset) > BigInt(high)) high = message.offset;
  }
  return { topic: first.topic, partition: first.partition, offset: low, lastOffset: high };
}

/**
 * The dead letter of `letter` as a record kafkajs can always encode, carrying as much as `rung`
 * says: the original key, value and headers plus the `x-dlq-*` headers.
 *
 * Consumed headers come as kafkajs decodes them, which is not what it encodes: a header sent with
 * no value (librdkafka and the Java client allow it) is null, and kafkajs throws on a null value;
 * and kafkajs's own decoding (before `hardenKafkajsHeaderDecoding`) turns a header named like an
 * `Object.prototype` member (`constructor`, `toString`) into an array holding that member before
 * the value. So only Buffer and string values are forwarded; null ones go as empty values, named
 * in `x-dlq-null-headers`.
 */
export function toDeadLetterMessage(letter: DeadLetter, rung: Rung): Message {
  const { key, value, headers, offset } = letter.message;
  const dlq: Record<string, string> = {
    'x-dlq-reason': letter.reason,
    'x-dlq-source-topic': letter.topic,
    'x-dlq-source-partition': String(letter.partition),
    'x-dlq-source-offset': String(offset),
  };
  if (rung !== 'whole') dlq['x-dlq-value-omitted'] = `${value?.length ?? 0} bytes`;
  const forwarded = forwardableHeaders(headers);
  if (rung === 'without value and headers') {
    dlq['x-dlq-headers-omitted'] = `${forwarded.count} headers, ${forwarded.bytes} bytes`;
    return { key, value: null, headers: dlq };
  }
  if (forwarded.nullNames.size > 0) dlq['x-dlq-null-headers'] = JSON.stringify([...forwarded.nullNames]);
  // The x-dlq-* headers are the dead letter's own: they replace any of the same name (an event
  // produced again from the DLQ carries the previous ones).
  return { key, value: rung === 'whole' ? value : null, headers: { ...forwarded.headers, ...dlq } };
}

interface ForwardableHeaders {
  readonly headers: IHeaders;
  readonly nullNames: ReadonlySet<string>;
  readonly count: number;
  readonly bytes: number;
}

function forwardableHeaders(consumed: IHeaders | undefined): ForwardableHeaders {
  // No prototype: a header may be named __proto__.
  const headers: IHeaders = Object.create(null) as IHeaders;
  const nullNames = new Set<string>();
  let count = 0;
  let bytes = 0;
  for (const name of Object.keys(consumed ?? {})) {
    const raw = consumed![name];
    const values: (Buffer | string)[] = [];
    for (const item of Array.isArray(raw) ? raw : [raw]) {
      if (item === null || item === undefined) {
        nullNames.add(name);
        values.push(Buffer.alloc(0));
      } else if (Buffer.isBuffer(item) || typeof item === 'string') {
        values.push(item);
        bytes += Buffer.byteLength(item);
      }
      // Anything else is the Object.prototype member kafkajs's decoding put in front of a value.
    }
    if (values.length === 0) continue;
    count += values.length;
    headers[name] = values.length === 1 ? values[0] : values;
  }
  return { headers, nullNames, count, bytes };
}

/**
 * True when the broker refused the record sent, so sending it unchanged will fail again. Any
 * other error (unreachable, timed out, not permitted, or a fault inside kafkajs) is not about the
 * record: it rejects, and ingest holds the partition and retries.
 */
function isRefusedRecord(error: unknown): boolean {
  return error instanceof Error && causeChain(error).some((cause) => REFUSED_BY_BROKER.has((cause as Error & { type?: string }).type ?? ''));
}

function where(letter: DeadLetter): string {
  return `${letter.topic} partition ${letter.partition} offset ${letter.message.offset}`;
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
