import { IsDefined, IsInt, IsOptional, IsString, ValidateNested, validateSync } from 'class-validator';
import fc from 'fast-check';
import { TASK_STATUSES, TaskEventDto } from './dto/task-event.dto.js';
import { CompiledDtoValidator } from './compiled-dto-validator.js';

const rules = new CompiledDtoValidator(TaskEventDto);

/** class-validator's own verdict on a copy, as the reference. */
const classValidatorAccepts = (value: Record<string, unknown>) =>
  validateSync(Object.assign(new TaskEventDto(), value), { forbidUnknownValues: true }).length === 0;

const FIELDS = [
  'taskId', 'taskType', 'status', 'referenceTaskName', 'workflowInstanceId', 'correlationId', 'retryCount', 'seq',
  'scheduledTime', 'updateTime', 'callbackAfterSeconds', 'queueWaitTime', 'retried', 'executed', 'loopOverTask',
  'inputData', 'outputData', 'workflowTask', 'taskDefinition', 'someUnknownField',
];

const anyValue = fc.oneof(
  fc.constantFrom(...TASK_STATUSES, 'DONE', '', 'a/b', 'x'.repeat(129), 'task-1', 'Az09_.:-'),
  fc.string(),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  fc.array(fc.integer(), { maxLength: 2 }),
  fc.dictionary(fc.string({ maxLength: 3 }), fc.integer(), { maxKeys: 2 }),
);

describe('CompiledDtoValidator', () => {
  it('agrees with class-validator on any mix of known and unknown fields with any values', () => {
    const almostValid = fc.record({
      taskId: fc.constantFrom('task-1', 'a'.repeat(128), 'bad id'),
      taskType: fc.constantFrom('SIMPLE', 7),
      status: fc.constantFrom(...TASK_STATUSES, 'DONE'),
    });
    fc.assert(
      fc.property(almostValid, fc.dictionary(fc.constantFrom(...FIELDS), anyValue, { maxKeys: 8 }), (base, extra) => {
        const value = { ...base, ...extra };
        expect(rules.accepts(value)).toBe(classValidatorAccepts(value));
      }),
      { numRuns: 3000 },
    );
  });

  it('accepts a valid task and rejects a broken one, explaining with class-validator messages', () => {
    const valid = { taskId: 'task-1', taskType: 'WAIT', status: 'COMPLETED', retryCount: 0, inputData: {} };
    expect(rules.accepts({ ...valid })).toBe(true);
    const broken: Record<string, unknown> = { ...valid, retryCount: '0' };
    expect(rules.accepts(broken)).toBe(false);
    const errors = rules.explain(broken);
    expect(errors.map((error) => error.property)).toEqual(['retryCount']);
    expect(errors[0].constraints).toEqual({ isInt: 'retryCount must be an integer number' });
  });

  it('refuses at startup a DTO with a kind of rule it does not run, rather than skipping it', () => {
    class Nested {
      @IsInt() n: number;
    }
    class WithNested {
      @ValidateNested() child: Nested;
    }
    class WithDefined {
      @IsDefined() @IsOptional() @IsString() name: string;
    }
    expect(() => new CompiledDtoValidator(WithNested)).toThrow(/not supported/);
    expect(() => new CompiledDtoValidator(WithDefined)).toThrow(/not supported/);
  });
});
