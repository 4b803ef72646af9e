import {
  getMetadataStorage,
  Validator,
  ValidationTypes,
  type ValidationArguments,
  type ValidationError,
  type ValidatorConstraintInterface,
  type ValidatorOptions,
} from 'class-validator';

type Condition = (object: object, value: unknown) => boolean;

interface Check {
  readonly constraint: ValidatorConstraintInterface;
  /** Reused for every call: the built-in constraints read only `constraints` from it. */
  readonly args: ValidationArguments;
}

interface PropertyRules {
  readonly property: string;
  readonly conditions: readonly Condition[];
  readonly checks: readonly Check[];
}

const validator = new Validator();
const OPTIONS: ValidatorOptions = Object.freeze({
  forbidUnknownValues: true,
  validationError: Object.freeze({ target: false, value: false }),
});

/**
 * A class-validator DTO's rules, read once from its decorators and run directly.
 *
 * class-validator's `validateSync` looks up and groups the class's metadata and builds an error
 * object for every property on every call, which on the ingest hot path costs more than kafkajs
 * spends on the whole message. `accepts` runs the same constraint instances with the same
 * `@IsOptional` conditions, several times cheaper (figures: bench/RESULTS.md). Rejections, which
 * are rare, go through `validateSync` itself, so the reasons are class-validator's own, and it has
 * the last word.
 *
 * Only plain synchronous constraints and `@IsOptional` are compiled; any other kind of rule
 * (nested, `each`, groups, async) fails at startup rather than being skipped.
 */
export class CompiledDtoValidator<T extends object> {
  private readonly rules: readonly PropertyRules[];

  constructor(private readonly target: new () => T) {
    const storage = getMetadataStorage();
    const metadatas = storage.getTargetValidationMetadatas(target, '', false, false);
    const byProperty = storage.groupByPropertyName(metadatas);
    this.rules = Object.entries(byProperty).map(([property, list]) => {
      const conditions: Condition[] = [];
      const checks: Check[] = [];
      for (const metadata of list) {
        if ((metadata.groups?.length ?? 0) > 0 || metadata.each || metadata.always) {
          throw new Error(`${target.name}.${property}: groups, each and always are not supported by CompiledDtoValidator`);
        }
        if (metadata.type === ValidationTypes.CONDITIONAL_VALIDATION) {
          conditions.push(metadata.constraints[0] as Condition);
        } else if (metadata.type === ValidationTypes.CUSTOM_VALIDATION) {
          for (const constraint of storage.getTargetValidatorConstraints(metadata.constraintCls)) {
            if (constraint.async) throw new Error(`${target.name}.${property}: async constraints are not supported`);
            const args = { targetName: target.name, property, constraints: metadata.constraints, object: {}, value: undefined };
            checks.push({ constraint: constraint.instance, args });
          }
        } else {
          throw new Error(`${target.name}.${property}: rules of type ${metadata.type} are not supported by CompiledDtoValidator`);
        }
      }
      return { property, conditions, checks };
    });
  }

  /** True when `value` satisfies every rule, as class-validator would decide. */
  accepts(value: Record<string, unknown>): boolean {
    for (const { property, conditions, checks } of this.rules) {
      const field = value[property];
      let applies = true;
      for (const condition of conditions) applies &&= condition(value, field);
      if (!applies) continue;
      for (const { constraint, args } of checks) {
        args.object = value;
        args.value = field;
        if (!constraint.validate(field, args)) return false;
      }
    }
    return true;
  }

  /**
   * class-validator's own verdict, with its messages, on an instance of the DTO holding only the
   * properties it has rules for. Nothing else could change the verdict, and a field named like an
   * `Object.prototype` member (`constructor`, `__proto__`) must not reach class-validator, which
   * reads `object.constructor` to find the rules.
   */
  explain(value: Record<string, unknown>): ValidationError[] {
    const instance = Object.create(this.target.prototype) as Record<string, unknown>;
    for (const { property } of this.rules) {
      if (Object.hasOwn(value, property)) instance[property] = value[property];
    }
    return validator.validateSync(instance, OPTIONS);
  }
}
