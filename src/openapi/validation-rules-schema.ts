import type { SchemaObject } from '@nestjs/swagger';
import { getMetadataStorage, ValidationTypes } from 'class-validator';

type Rule = (schema: SchemaObject, constraints: readonly unknown[], where: string) => void;

/** Sets the JSON type a rule implies; two rules implying different types could never both hold. */
function requireType(schema: SchemaObject, type: string, where: string): void {
  if (schema.type !== undefined && schema.type !== type) throw new Error(`${where}: rules for both ${String(schema.type)} and ${type}`);
  schema.type = type;
}

/**
 * What each class-validator rule means in an OpenAPI 3.0 schema. Each entry says exactly what
 * the rule accepts: `matches` and `maxLength` refuse anything but a string, as `isString` does.
 */
const RULES: Readonly<Record<string, Rule>> = {
  isString: (schema, _, where) => requireType(schema, 'string', where),
  isInt: (schema, _, where) => requireType(schema, 'integer', where),
  isBoolean: (schema, _, where) => requireType(schema, 'boolean', where),
  // class-validator's isObject refuses null and arrays, as JSON Schema's object type does.
  isObject: (schema, _, where) => requireType(schema, 'object', where),
  isIn: (schema, [values], where) => {
    if (!Array.isArray(values) || !values.every((value) => typeof value === 'string')) throw new Error(`${where}: isIn supports a list of strings only`);
    requireType(schema, 'string', where);
    schema.enum = [...(values as string[])];
  },
  matches: (schema, [pattern, modifiers], where) => {
    if (!(pattern instanceof RegExp) || pattern.flags !== '' || modifiers !== undefined) {
      throw new Error(`${where}: matches supports a RegExp without flags only`);
    }
    requireType(schema, 'string', where);
    schema.pattern = pattern.source;
  },
  maxLength: (schema, [max], where) => {
    requireType(schema, 'string', where);
    schema.maxLength = Number(max);
  },
  isNotEmpty: (schema) => {
    // Refuses '', null and undefined; on a string that is a minimum length of 1 (set below, once
    // the type is known), on any other type nothing beyond the type itself.
    schema.minLength = 1;
  },
};

export interface ValidationRulesSchemaOptions {
  readonly description?: string;
}

/**
 * The OpenAPI 3.0 schema of a class-validator DTO, read from its decorators, so the document
 * states exactly what validation accepts and the fields are listed once, on the class.
 *
 * A property is required unless it is `@IsOptional()`, which also lets it be null (class-validator
 * skips null and undefined alike): `nullable: true`. Properties the class does not list are
 * allowed (the DTOs here are validated without `forbidNonWhitelisted`). A rule this function does
 * not know, or one it cannot state exactly (groups, `each`, conditions other than IsOptional),
 * throws, so the document cannot silently say less than the validation does.
 */
export function validationRulesSchema(target: new () => object, options: ValidationRulesSchemaOptions = {}): SchemaObject {
  const storage = getMetadataStorage();
  const byProperty = storage.groupByPropertyName(
    storage.getTargetValidationMetadatas(target, '', false, false),
  );
  const properties: Record<string, SchemaObject> = {};
  const required: string[] = [];
  for (const [property, metadatas] of Object.entries(byProperty)) {
    const where = `${target.name}.${property}`;
    const schema: SchemaObject = {};
    let optional = false;
    for (const metadata of metadatas) {
      if ((metadata.groups?.length ?? 0) > 0 || metadata.each || metadata.always) {
        throw new Error(`${where}: groups, each and always have no OpenAPI schema here`);
      }
      if (metadata.type === ValidationTypes.CONDITIONAL_VALIDATION && metadata.name === 'isOptional') {
        optional = true;
        continue;
      }
      const rule = metadata.type === ValidationTypes.CUSTOM_VALIDATION && metadata.name !== undefined ? RULES[metadata.name] : undefined;
      if (!rule) throw new Error(`${where}: no OpenAPI schema for the rule ${metadata.name ?? metadata.type}`);
      rule(schema, metadata.constraints ?? [], where);
    }
    if (schema.minLength !== undefined && schema.type !== 'string') {
      if (schema.type === undefined) throw new Error(`${where}: isNotEmpty without a type has no OpenAPI schema here`);
      delete schema.minLength;
    }
    if (optional) {
      // "nullable" needs a type; without one, null is allowed anyway.
      if (schema.type !== undefined) schema.nullable = true;
    } else {
      required.push(property);
    }
    properties[property] = schema;
  }
  return {
    type: 'object',
    ...(options.description !== undefined && { description: options.description }),
    required,
    properties,
    additionalProperties: true,
  };
}
