import type { HeaderObject, OpenAPIObject, OperationObject, ReferenceObject, ResponseObject, SchemaObject } from '@nestjs/swagger';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { RawResponse } from './http-client.js';

// ajv-formats is CommonJS: imported from ESM, its default is module.exports, the plugin itself,
// which TypeScript types as the module with the plugin as its `default`.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;
type Method = (typeof METHODS)[number];

/** `METHOD path status`, as the document lists an answer and as a real response is recorded. */
const answerKey = (method: string, path: string, status: string | number) => `${method.toUpperCase()} ${path} ${status}`;

/**
 * An OpenAPI 3.0 document held against real responses: each one's status must be documented for
 * its path and method, its body must validate against the documented schema (or be empty where
 * none is documented), and every documented header must be present with a valid value. Records
 * which documented answers real responses have exercised.
 *
 * ajv validates in strict mode, with OpenAPI 3.0's `nullable` (built into ajv), the formats of
 * ajv-formats (int32, int64, ...), and OpenAPI's annotation keywords allowed; a schema using
 * anything else fails to compile rather than being half checked. A `$ref` resolves into the
 * document's components, which are attached to each schema compiled.
 */
export class OpenApiContract {
  private readonly ajv: Ajv;
  private readonly validators = new Map<object, ValidateFunction>();
  private readonly answered = new Set<string>();
  private readonly templates: { readonly path: string; readonly pattern: RegExp }[];

  constructor(readonly document: OpenAPIObject) {
    this.ajv = new Ajv({ strict: true, allErrors: true });
    addFormats(this.ajv);
    this.ajv.addVocabulary(['components', 'example', 'xml', 'externalDocs']);
    this.templates = Object.keys(document.paths).map((path) => ({
      path,
      pattern: new RegExp(`^${path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}/]+\}/g, '[^/]+')}$`),
    }));
  }

  /** Every documented `METHOD path status`. */
  get documentedAnswers(): string[] {
    return Object.entries(this.document.paths).flatMap(([path, item]) =>
      METHODS.flatMap((method) => Object.keys(item[method]?.responses ?? {}).map((status) => answerKey(method, path, status))),
    );
  }

  /** Documented answers that no checked response has given. */
  unanswered(): string[] {
    return this.documentedAnswers.filter((answer) => !this.answered.has(answer));
  }

  /** What is wrong with `response` to `method url` by the document; empty when nothing is. Records the answer. */
  problems(method: Method, url: string, response: Pick<RawResponse, 'status' | 'headers' | 'body'>): string[] {
    const path = url.split('?', 1)[0];
    const template = this.templates.find(({ pattern }) => pattern.test(path));
    if (!template) return [`${path} matches no documented path`];
    const operation: OperationObject | undefined = this.document.paths[template.path][method];
    if (!operation) return [`${method.toUpperCase()} ${template.path} is not documented`];
    const documented = operation.responses[String(response.status)] as ResponseObject | ReferenceObject | undefined;
    if (!documented) return [`${answerKey(method, template.path, response.status)} is not documented`];
    if ('$ref' in documented) throw new Error('response $refs are not supported here; the document has none');
    const key = answerKey(method, template.path, response.status);
    const problems = [...this.headerProblems(documented, response), ...this.bodyProblems(documented, response)].map((problem) => `${key}: ${problem}`);
    if (problems.length === 0) this.answered.add(key);
    return problems;
  }

  private headerProblems(documented: ResponseObject, response: Pick<RawResponse, 'headers'>): string[] {
    return Object.entries(documented.headers ?? {}).flatMap(([name, header]) => {
      const value = response.headers[name.toLowerCase()];
      // A response header is required unless documented `required: false` (stricter than OpenAPI's default).
      if (value === undefined) return (header as HeaderObject).required === false ? [] : [`header ${name} is missing`];
      const schema = (header as HeaderObject).schema;
      return schema ? this.schemaProblems(schema, value, `header ${name}`) : [];
    });
  }

  private bodyProblems(documented: ResponseObject, response: Pick<RawResponse, 'headers' | 'body'>): string[] {
    const content = documented.content ?? {};
    if (Object.keys(content).length === 0) {
      return response.body.length === 0 ? [] : [`a body of ${response.body.length} bytes where none is documented`];
    }
    const mediaType = response.headers['content-type']?.split(';', 1)[0].trim();
    const media = mediaType === undefined ? undefined : content[mediaType];
    if (!media) return [`Content-Type ${mediaType ?? '(none)'}, documented: ${Object.keys(content).join(', ')}`];
    if (!media.schema) return [];
    let body: unknown;
    try {
      body = JSON.parse(response.body.toString('utf8'));
    } catch {
      return [`the body is not JSON: ${response.body.toString('utf8').slice(0, 80)}`];
    }
    return this.schemaProblems(media.schema, body, 'body');
  }

  private schemaProblems(schema: SchemaObject | ReferenceObject, value: unknown, what: string): string[] {
    let validate = this.validators.get(schema);
    if (!validate) {
      validate = this.ajv.compile({ ...schema, components: this.document.components });
      this.validators.set(schema, validate);
    }
    if (validate(value)) return [];
    return (validate.errors ?? []).map((error) => `${what}${error.instancePath} ${error.message ?? error.keyword} (${error.schemaPath})`);
  }
}
