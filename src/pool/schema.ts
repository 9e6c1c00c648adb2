/**
 * A JSON Schema evaluator for the small subset of draft 2020-12 that `pools.schema.json` uses:
 * `type`, `properties`, `required`, `additionalProperties: false`, `items`, `minItems`,
 * `pattern` and local `$ref`s into `$defs`. The pools schema is one file shared with the Helm
 * chart's values.schema.json (docs/design.md §2), so `helm install` and `podlease serve` refuse
 * the same malformed pools; this evaluator keeps podlease free of a schema library and lets
 * pools-file.ts word each problem itself (pool name and field, every problem at once).
 *
 * `errorMessage` (the ajv-errors keyword, an annotation to other validators) names what a value
 * should have been. A keyword outside the subset is a programming error: a unit test checks the
 * schema uses none.
 */

/** The node types this evaluator knows. */
export type SchemaType = 'object' | 'array' | 'string' | 'boolean' | 'integer' | 'number';

export interface Schema {
  readonly $schema?: string;
  readonly $id?: string;
  readonly $ref?: string;
  readonly $defs?: Readonly<Record<string, Schema>>;
  readonly title?: string;
  readonly description?: string;
  readonly errorMessage?: string;
  readonly type?: SchemaType;
  readonly properties?: Readonly<Record<string, Schema>>;
  readonly required?: readonly string[];
  readonly additionalProperties?: false;
  readonly items?: Schema;
  readonly minItems?: number;
  readonly pattern?: string;
}

/** Every keyword the evaluator reads or deliberately ignores (annotations). */
export const SCHEMA_KEYWORDS: ReadonlySet<string> = new Set([
  '$schema',
  '$id',
  '$ref',
  '$defs',
  'title',
  'description',
  'errorMessage',
  'type',
  'properties',
  'required',
  'additionalProperties',
  'items',
  'minItems',
  'pattern',
]);

export type SchemaPath = readonly (string | number)[];

export type SchemaIssue =
  | {
      readonly keyword: 'type' | 'pattern' | 'minItems';
      readonly path: SchemaPath;
      readonly value: unknown;
      readonly schema: Schema;
    }
  | {
      readonly keyword: 'required';
      readonly path: SchemaPath;
      readonly property: string;
      readonly schema: Schema;
    }
  | {
      readonly keyword: 'additionalProperties';
      readonly path: SchemaPath;
      readonly property: string;
      readonly schema: Schema;
    };

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const hasType = (type: SchemaType, v: unknown): boolean => {
  switch (type) {
    case 'object':
      return isRecord(v);
    case 'array':
      return Array.isArray(v);
    case 'integer':
      return Number.isInteger(v);
    case 'number':
      return typeof v === 'number' && Number.isFinite(v);
    default:
      return typeof v === type;
  }
};

const patterns = new Map<string, RegExp>();
const compiled = (pattern: string): RegExp => {
  let re = patterns.get(pattern);
  if (re === undefined) {
    // JSON Schema patterns are ECMA-262 regular expressions, not anchored unless they say so.
    re = new RegExp(pattern, 'u');
    patterns.set(pattern, re);
  }
  return re;
};

/** The subschema a `#/$defs/<name>` reference names in `root`. */
export const resolveRef = (root: Schema, ref: string): Schema => {
  const match = /^#\/\$defs\/([^/]+)$/.exec(ref);
  const target = match?.[1] === undefined ? undefined : root.$defs?.[match[1]];
  if (target === undefined) throw new Error(`schema: unresolvable $ref ${ref}`);
  return target;
};

/** The schema itself, or the one its `$ref` names (annotations beside a `$ref` are kept). */
const deref = (root: Schema, schema: Schema): Schema =>
  schema.$ref === undefined ? schema : { ...resolveRef(root, schema.$ref), ...schema };

class Walker {
  readonly root: Schema;
  readonly issues: SchemaIssue[] = [];
  constructor(root: Schema) {
    this.root = root;
  }

  visit(node: Schema, value: unknown, path: SchemaPath): void {
    const schema = deref(this.root, node);
    if (schema.type !== undefined && !hasType(schema.type, value)) {
      this.issues.push({ keyword: 'type', path, value, schema });
      return;
    }
    if (schema.pattern !== undefined && typeof value === 'string') {
      if (!compiled(schema.pattern).test(value)) {
        this.issues.push({ keyword: 'pattern', path, value, schema });
      }
    }
    if (Array.isArray(value)) this.array(schema, value, path);
    if (isRecord(value)) this.object(schema, value, path);
  }

  array(schema: Schema, value: readonly unknown[], path: SchemaPath): void {
    if (schema.minItems !== undefined && value.length < schema.minItems) {
      this.issues.push({ keyword: 'minItems', path, value, schema });
    }
    const items = schema.items;
    if (items === undefined) return;
    value.forEach((v, i) => {
      this.visit(items, v, [...path, i]);
    });
  }

  object(schema: Schema, value: Readonly<Record<string, unknown>>, path: SchemaPath): void {
    for (const property of schema.required ?? []) {
      if (value[property] === undefined) {
        this.issues.push({ keyword: 'required', path, property, schema });
      }
    }
    const properties = schema.properties ?? {};
    for (const [key, v] of Object.entries(value)) {
      const sub = properties[key];
      if (sub !== undefined) {
        if (v !== undefined) this.visit(sub, v, [...path, key]);
      } else if (schema.additionalProperties === false) {
        this.issues.push({ keyword: 'additionalProperties', path, property: key, schema });
      }
    }
  }
}

/** Every way `value` breaks `schema` (an empty list when it conforms). */
export const validateSchema = (schema: Schema, value: unknown): SchemaIssue[] => {
  const walker = new Walker(schema);
  walker.visit(schema, value, []);
  return walker.issues;
};
