import { isUtf8 } from 'node:buffer';
import { Injectable } from '@nestjs/common';
import type { KafkaMessage } from 'kafkajs';
import type { ValidationError } from 'class-validator';
import { unreadableBatchOf } from '../kafka/kafkajs-hardening.js';
import { isValidTaskId, TASK_ID_RULE } from '../projection/task-id.js';
import type { TaskEvent } from '../projection/task-event.js';
import { CompiledDtoValidator } from './compiled-dto-validator.js';
import { TaskEventDto, TERMINAL_TASK_STATUSES } from './dto/task-event.dto.js';
import { InvalidTaskEventError } from './invalid-task-event.error.js';

/** The event contract's limit on a value: 1 MiB. */
export const MAX_VALUE_BYTES = 1024 * 1024;

// Built once, from TaskEventDto's decorators: decoding runs for every event on the hot path.
const taskEventRules = new CompiledDtoValidator(TaskEventDto);

/**
 * Turns a Kafka message of the source topic into a `TaskEvent`, or throws `InvalidTaskEventError`.
 * The value is parsed only to be validated: the event carries the produced bytes themselves, so
 * unknown fields, key order and number formatting all reach Redis exactly as produced.
 */
@Injectable()
export class TaskEventDecoder {
  decode(message: KafkaMessage, partition: number): TaskEvent {
    const unreadable = unreadableBatchOf(message);
    if (unreadable) {
      const { firstOffset, lastOffset, records, reason } = unreadable;
      throw new InvalidTaskEventError('BATCH_UNREADABLE', `the record batch at offsets ${firstOffset} to ${lastOffset} (${records} records) could not be read: ${reason}`);
    }
    const key = message.key === null ? null : message.key.toString('utf8');
    const value = message.value;
    if (value === null) return tombstone(key, message, partition);

    if (value.length > MAX_VALUE_BYTES) {
      throw new InvalidTaskEventError('VALUE_TOO_LARGE', `value is ${value.length} bytes, over the ${MAX_VALUE_BYTES}-byte limit`);
    }
    // JSON text is UTF-8; decoding other bytes would silently replace them, and the stored
    // bytes would then not be the JSON that was validated.
    if (!isUtf8(value)) throw new InvalidTaskEventError('INVALID_JSON', 'value is not UTF-8');
    let parsed: unknown;
    try {
      parsed = JSON.parse(value.toString('utf8'));
    } catch (error) {
      throw new InvalidTaskEventError('INVALID_JSON', `value is not JSON (${(error as Error).name})`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new InvalidTaskEventError('NOT_AN_OBJECT', `value is ${Array.isArray(parsed) ? 'an array' : parsed === null ? 'null' : `a ${typeof parsed}`}, not a JSON object`);
    }

    const fields = parsed as Record<string, unknown>;
    if (!taskEventRules.accepts(fields)) {
      const errors = taskEventRules.explain(fields);
      if (errors.length > 0) throw new InvalidTaskEventError('INVALID_FIELDS', reasonOf(errors));
    }

    const { taskId, status } = parsed as TaskEventDto;
    if (key !== null && key !== taskId) {
      throw new InvalidTaskEventError('KEY_MISMATCH', "the message key and the value's taskId differ");
    }
    const terminal = TERMINAL_TASK_STATUSES.has(status);
    return { taskId, value, partition, offset: message.offset, timestamp: Number(message.timestamp), terminal };
  }
}

/** A null value deletes the task named by the key. */
function tombstone(key: string | null, message: KafkaMessage, partition: number): TaskEvent {
  if (key === null) throw new InvalidTaskEventError('MISSING_KEY', 'a tombstone (null value) needs the taskId as its key');
  if (!isValidTaskId(key)) {
    throw new InvalidTaskEventError('INVALID_KEY', `a tombstone key must be a taskId: ${TASK_ID_RULE}`);
  }
  return { taskId: key, value: null, partition, offset: message.offset, timestamp: Number(message.timestamp), terminal: false };
}

/** One line naming each failed rule. class-validator's messages name the property, never its value. */
function reasonOf(errors: ValidationError[]): string {
  return errors.map((error) => Object.values(error.constraints ?? {}).join(', ') || `${error.property} is invalid`).join('; ');
}
