import { Ajv } from 'ajv';
import { IsDefined, IsInt, IsOptional, IsString, Matches, ValidateNested, validateSync } from 'class-validator';
import fc from 'fast-check';
import { GenerateTokenRequest } from '../auth/dto/generate-token-request.dto.js';
import { TASK_STATUSES, TaskEventDto } from '../ingest/dto/task-event.dto.js';
import { TASK_ID_PATTERN } from '../projection/task-id.js';
import { validationRulesSchema } from './validation-rules-schema.js';

const taskSchema = validationRulesSchema(TaskEventDto);
const schemaAccepts = new Ajv({ strict: true }).compile(taskSchema);

/** class-validator's own verdict, as ingest reaches it. */
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
  fc.array(fc.integer(), { maxLength: 2 }),
  fc.dictionary(fc.string({ maxLength: 3 }), fc.integer(), { maxKeys: 2 }),
);

describe('validationRulesSchema', () => {
  it("states the task's rules: three required fields, the id pattern, the statuses, typed optional fields that may be null, unknown fields allowed", () => {
    expect(taskSchema.required).toEqual(['taskId', 'taskType', 'status']);
    expect(taskSchema.additionalProperties).toBe(true);
    expect(taskSchema.properties).toMatchObject({
      taskId: { type: 'string', pattern: TASK_ID_PATTERN.source },
      taskType: { type: 'string' },
      status: { type: 'string', enum: [...TASK_STATUSES] },
      retryCount: { type: 'integer', nullable: true },
      retried: { type: 'boolean', nullable: true },
      inputData: { type: 'object', nullable: true },
      workflowInstanceId: { type: 'string', nullable: true },
    });
  });

  it('accepts exactly what class-validator accepts, on any JSON mix of known and unknown fields', () => {
    const almostValid = fc.record({
      taskId: fc.constantFrom('task-1', 'a'.repeat(128), 'a'.repeat(129), 'bad id', null),
      taskType: fc.constantFrom('SIMPLE', 7),
      status: fc.constantFrom(...TASK_STATUSES, 'DONE', null),
    });
    fc.assert(
      fc.property(almostValid, fc.dictionary(fc.constantFrom(...FIELDS), anyValue, { maxKeys: 8 }), (base, extra) => {
        // What a producer can send is JSON: NaN becomes null, as it would on the wire.
        const value = JSON.parse(JSON.stringify({ ...base, ...extra })) as Record<string, unknown>;
        expect(schemaAccepts(value)).toBe(classValidatorAccepts(value));
      }),
      { numRuns: 3000 },
    );
  });

  it('states string bounds: IsNotEmpty as minLength 1, MaxLength as maxLength', () => {
    expect(validationRulesSchema(GenerateTokenRequest)).toEqual({
      type: 'object',
      required: ['keyId', 'keySecret'],
      properties: {
        keyId: { type: 'string', minLength: 1, maxLength: 256 },
        keySecret: { type: 'string', minLength: 1, maxLength: 1024 },
      },
      additionalProperties: true,
    });
  });

  it('refuses a rule it cannot state exactly, rather than leaving it out of the document', () => {
    class Nested {
      @IsInt() n: number;
    }
    class WithNested {
      @ValidateNested() child: Nested;
    }
    class WithDefined {
      @IsDefined() @IsOptional() @IsString() name: string;
    }
    class WithFlags {
      @Matches(/^a$/i) name: string;
    }
    class WithTwoTypes {
      @IsString() @IsInt() name: string;
    }
    expect(() => validationRulesSchema(WithNested)).toThrow(/no OpenAPI schema for the rule/);
    expect(() => validationRulesSchema(WithDefined)).toThrow(/no OpenAPI schema for the rule/);
    expect(() => validationRulesSchema(WithFlags)).toThrow(/without flags/);
    expect(() => validationRulesSchema(WithTwoTypes)).toThrow(/rules for both integer and string/);
  });
});
