import type { KafkaMessage } from 'kafkajs';
import { SEED_TASK, sampleTaskBytes } from '../../test/support/sample-task.js';
import { TASK_STATUSES } from './dto/task-event.dto.js';
import { InvalidTaskEventError } from './invalid-task-event.error.js';
import { MAX_VALUE_BYTES, TaskEventDecoder } from './task-event-decoder.js';

const decoder = new TaskEventDecoder();

function message(key: string | Buffer | null, value: string | Buffer | null): KafkaMessage {
  return {
    key: typeof key === 'string' ? Buffer.from(key) : key,
    value: typeof value === 'string' ? Buffer.from(value) : value,
    timestamp: '1734697335733',
    attributes: 0,
    offset: '42',
    headers: {},
  };
}

const task = (fields: Record<string, unknown> = {}) => JSON.stringify({ ...SEED_TASK, taskId: 'task-1', ...fields });
const without = (field: string) => {
  const copy: Record<string, unknown> = { ...SEED_TASK, taskId: 'task-1' };
  delete copy[field];
  return JSON.stringify(copy);
};

function rejection(key: string | Buffer | null, value: string | Buffer | null): InvalidTaskEventError {
  try {
    decoder.decode(message(key, value), 0);
  } catch (error) {
    if (error instanceof InvalidTaskEventError) return error;
    throw error;
  }
  throw new Error('the event was accepted');
}

describe('TaskEventDecoder', () => {
  describe('a valid event', () => {
    it('carries the produced bytes themselves, the taskId and the Kafka version', () => {
      const produced = message('task-1', sampleTaskBytes('task-1', 3));
      const event = decoder.decode(produced, 5);
      expect(event.value).toBe(produced.value);
      expect(event).toMatchObject({ taskId: 'task-1', partition: 5, offset: '42', timestamp: 1734697335733 });
    });

    it('keeps unknown fields, key order, spacing and number spelling: nothing is re-serialised', () => {
      const bytes = Buffer.from(`{ "zeta" : [1.50, {"k":"é"}],"status":"SKIPPED","taskId":"task-1","taskType":"X","retryCount":1e0 }`);
      expect(decoder.decode(message('task-1', bytes), 0).value!.equals(bytes)).toBe(true);
    });

    it('takes the taskId from the value when the key is missing', () => {
      expect(decoder.decode(message(null, task()), 0).taskId).toBe('task-1');
    });

    it('accepts the seed task as the API page shows it, null taskDefinition included', () => {
      expect(decoder.decode(message(String(SEED_TASK.taskId), JSON.stringify(SEED_TASK)), 0).taskId).toBe(SEED_TASK.taskId);
    });

    it.each(TASK_STATUSES)('accepts status %s', (status) => {
      expect(decoder.decode(message('task-1', task({ status })), 0).taskId).toBe('task-1');
    });

    it.each([
      ['SCHEDULED', false],
      ['IN_PROGRESS', false],
      ['COMPLETED', true],
      ['COMPLETED_WITH_ERRORS', true],
      ['FAILED', true],
      ['FAILED_WITH_TERMINAL_ERROR', true],
      ['TIMED_OUT', true],
      ['CANCELED', true],
      ['SKIPPED', true],
    ])('says whether status %s is terminal, as Conductor\'s Task.Status.isTerminal() does: %s', (status, terminal) => {
      expect(decoder.decode(message('task-1', task({ status })), 0).terminal).toBe(terminal);
    });

    it('accepts a taskId of 128 characters using every allowed character class', () => {
      const taskId = ('Az09_.:-'.repeat(16)).slice(0, 128);
      expect(decoder.decode(message(taskId, task({ taskId })), 0).taskId).toBe(taskId);
    });

    it('accepts null for optional fields, as Jackson writes absent values', () => {
      expect(decoder.decode(message('task-1', task({ retryCount: null, inputData: null, workerId: null })), 0).taskId).toBe('task-1');
    });

    it('accepts a value of exactly 1 MiB', () => {
      const base = task({ outputData: { pad: '' } });
      const padded = task({ outputData: { pad: 'p'.repeat(MAX_VALUE_BYTES - Buffer.byteLength(base)) } });
      expect(Buffer.byteLength(padded)).toBe(MAX_VALUE_BYTES);
      expect(decoder.decode(message('task-1', padded), 0).taskId).toBe('task-1');
    });
  });

  describe('tombstones', () => {
    it('a null value with a key deletes that task', () => {
      expect(decoder.decode(message('task-1', null), 3)).toEqual({
        taskId: 'task-1',
        value: null,
        partition: 3,
        offset: '42',
        timestamp: 1734697335733,
        terminal: false,
      });
    });

    it('a null value without a key is invalid', () => {
      expect(rejection(null, null).code).toBe('MISSING_KEY');
    });

    it('a null value whose key is not a taskId is invalid', () => {
      expect(rejection('no/slashes', null).code).toBe('INVALID_KEY');
      expect(rejection('', null).code).toBe('INVALID_KEY');
    });
  });

  describe('invalid values', () => {
    it('over 1 MiB', () => {
      const error = rejection('task-1', Buffer.alloc(MAX_VALUE_BYTES + 1, 0x20));
      expect(error.code).toBe('VALUE_TOO_LARGE');
      expect(error.retryable).toBe(false);
    });

    it.each([
      ['truncated JSON', '{"taskId":"task-1",'],
      ['not JSON at all', 'hello'],
      ['an empty value', ''],
      ['JSON with a byte-order mark', `\uFEFF${task()}`],
    ])('%s is INVALID_JSON', (_name, value) => {
      expect(rejection('task-1', value).code).toBe('INVALID_JSON');
    });

    it('bytes that are not UTF-8 are INVALID_JSON, even where JSON.parse would accept their replacement', () => {
      const json = Buffer.from(task().replace(/}$/, ''));
      const invalid = Buffer.concat([json, Buffer.from(',"note":"'), Buffer.from([0xff]), Buffer.from('"}')]);
      expect(() => JSON.parse(invalid.toString('utf8'))).not.toThrow();
      expect(rejection('task-1', invalid).code).toBe('INVALID_JSON');
    });

    it.each([
      ['an array', '[1,2]'],
      ['a string', '"task-1"'],
      ['a number', '42'],
      ['true', 'true'],
      ['JSON null', 'null'],
    ])('%s is NOT_AN_OBJECT', (_name, value) => {
      expect(rejection('task-1', value).code).toBe('NOT_AN_OBJECT');
    });
  });

  describe('required fields', () => {
    it.each(['taskId', 'taskType', 'status'])('%s missing', (field) => {
      const error = rejection(null, without(field));
      expect(error.code).toBe('INVALID_FIELDS');
      expect(error.message).toContain(field);
    });

    it.each([
      ['status outside the enum', { status: 'DONE' }, 'status'],
      ['status of the wrong case', { status: 'completed' }, 'status'],
      ['taskType not a string', { taskType: 7 }, 'taskType'],
      ['taskId not a string', { taskId: 12 }, 'taskId'],
      ['taskId empty', { taskId: '' }, 'taskId'],
      ['taskId of 129 characters', { taskId: 'a'.repeat(129) }, 'taskId'],
      ['taskId with a slash', { taskId: 'a/b' }, 'taskId'],
      ['taskId with a space', { taskId: 'a b' }, 'taskId'],
      ['taskId with a non-ASCII letter', { taskId: 'tâche' }, 'taskId'],
    ])('%s', (_name, fields, property) => {
      const error = rejection(null, task(fields));
      expect(error.code).toBe('INVALID_FIELDS');
      expect(error.message).toContain(property);
    });
  });

  describe('optional fields must have their Conductor type when present', () => {
    const integers = [
      'retryCount', 'seq', 'pollCount', 'scheduledTime', 'startTime', 'endTime', 'updateTime', 'startDelayInSeconds',
      'responseTimeoutSeconds', 'callbackAfterSeconds', 'rateLimitPerFrequency', 'rateLimitFrequencyInSeconds',
      'workflowPriority', 'iteration', 'firstStartTime', 'queueWaitTime',
    ];
    const flags = ['retried', 'executed', 'callbackFromWorker', 'subworkflowChanged', 'loopOverTask'];
    const objects = ['inputData', 'outputData', 'workflowTask', 'taskDefinition', 'inputMessage', 'outputMessage'];
    const strings = [
      'referenceTaskName', 'taskDefName', 'workflowInstanceId', 'workflowType', 'correlationId', 'retriedTaskId',
      'reasonForIncompletion', 'workerId', 'domain', 'externalInputPayloadStoragePath', 'externalOutputPayloadStoragePath',
      'executionNameSpace', 'isolationGroupId', 'subWorkflowId', 'parentTaskId',
    ];

    const cases: [string, unknown][] = [
      ...integers.flatMap((field): [string, unknown][] => [[field, '1'], [field, 1.5], [field, true]]),
      ...flags.flatMap((field): [string, unknown][] => [[field, 'false'], [field, 0]]),
      ...objects.flatMap((field): [string, unknown][] => [[field, []], [field, 'x'], [field, 1]]),
      ...strings.flatMap((field): [string, unknown][] => [[field, 1], [field, {}], [field, false]]),
    ];

    it.each(cases)('%s = %j is INVALID_FIELDS naming the field', (field, value) => {
      const error = rejection(null, task({ [field]: value }));
      expect(error.code).toBe('INVALID_FIELDS');
      expect(error.message).toContain(field);
    });

    it('the seed has a value of the right type for every integer, flag and object field it carries', () => {
      for (const field of [...integers, ...flags, ...objects, ...strings]) {
        if (field in SEED_TASK) expect(decoder.decode(message('task-1', task({ [field]: SEED_TASK[field] })), 0).taskId).toBe('task-1');
      }
    });

    it('names every broken field at once', () => {
      const error = rejection(null, task({ retryCount: 'x', retried: 'x', inputData: 'x' }));
      expect(error.message).toMatch(/retryCount.*retried.*inputData/);
    });

    it('never puts a value in the reason, which may be task data', () => {
      const error = rejection(null, task({ workerId: { secret: 'hunter2' }, status: 'hunter3' }));
      expect(error.message).not.toMatch(/hunter/);
    });
  });

  describe('key and value', () => {
    it("a key that differs from the value's taskId is KEY_MISMATCH", () => {
      expect(rejection('task-2', task()).code).toBe('KEY_MISMATCH');
    });

    it('an empty key is a key, and differs', () => {
      expect(rejection('', task()).code).toBe('KEY_MISMATCH');
    });

    it('a key that is not UTF-8 never matches a taskId', () => {
      expect(rejection(Buffer.from([0x74, 0xff]), task({ taskId: 't' })).code).toBe('KEY_MISMATCH');
    });
  });

  describe('duplicate JSON keys', () => {
    it('validation sees the last value of a repeated key, and the bytes keep every occurrence', () => {
      const bytes = Buffer.from('{"taskId":"task-1","taskType":"t","status":"BOGUS","status":"COMPLETED"}');
      expect(decoder.decode(message('task-1', bytes), 0)).toMatchObject({ value: bytes, terminal: true });
      expect(decoder.decode(message('task-1', '{"taskId":"task-1","taskType":"t","status":"COMPLETED","status":"IN_PROGRESS"}'), 0).terminal).toBe(false);
      expect(rejection('task-1', '{"taskId":"task-1","taskType":"t","status":"COMPLETED","status":"BOGUS"}').code).toBe('INVALID_FIELDS');
    });

    it('a repeated taskId is checked against the key by its last value', () => {
      expect(rejection('task-1', '{"taskId":"task-1","taskId":"task-2","taskType":"t","status":"COMPLETED"}').code).toBe('KEY_MISMATCH');
    });
  });

  describe('fields named like Object.prototype members', () => {
    const names = ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf', 'isPrototypeOf', 'propertyIsEnumerable'];
    const shapes: [string, string][] = [
      ['null', 'null'],
      ['a number', '1'],
      ['a string', '"x"'],
      ['an object', '{"taskId":"other","prototype":null}'],
    ];

    for (const name of names) {
      for (const [shape, json] of shapes) {
        it(`${name} as ${shape}: a valid event is accepted with its bytes unchanged`, () => {
          const bytes = Buffer.from(`{"taskId":"task-1","taskType":"t","status":"COMPLETED","${name}":${json}}`);
          expect(decoder.decode(message('task-1', bytes), 0).value!.equals(bytes)).toBe(true);
        });

        it(`${name} as ${shape}: an invalid event is rejected as INVALID_FIELDS, naming the broken rule`, () => {
          const error = rejection('task-1', `{"taskId":"task-1","taskType":"t","status":"BOGUS","${name}":${json}}`);
          expect(error.code).toBe('INVALID_FIELDS');
          expect(error.message).toMatch(/status must be one of/);
        });
      }
    }

    it('a __proto__ field cannot supply a required field it does not hold itself', () => {
      const error = rejection('task-1', '{"__proto__":{"taskId":"task-1","taskType":"t","status":"COMPLETED"}}');
      expect(error.code).toBe('INVALID_FIELDS');
      expect(error.message).toMatch(/taskId/);
    });
  });
});
