import type { PathsObject, ReferenceObject, SchemaObject, SecuritySchemeObject } from '@nestjs/swagger';

/**
 * What a module adds to the OpenAPI document beside what @nestjs/swagger reads from the Nest
 * controllers' decorators: the paths of a route Nest does not serve (the task read, a front
 * route), and the named schemas and security schemes the paths refer to. api-document.ts merges
 * every part into the document once, at start-up.
 */
export interface ApiDocsPart {
  readonly paths?: PathsObject;
  readonly schemas?: Readonly<Record<string, SchemaObject>>;
  readonly securitySchemes?: Readonly<Record<string, SecuritySchemeObject>>;
}

/** A reference to the document's schema `name` (components.schemas). */
export function schemaRef(name: string): ReferenceObject {
  return { $ref: `#/components/schemas/${name}` };
}
