import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Static, Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { ManifestError, PackageIoError } from './errors.js';

/** Cartridge names are file-name safe: they become `<name>.js` in the data directory. */
const NAME = '^[a-z0-9][a-z0-9._-]{0,63}$';
/** An event type such as `build.failed`; `consumes` may also use `*` as a segment. */
const EVENT_TYPE = '^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$';
const EVENT_PATTERN = '^(\\*|[A-Za-z0-9_-]+(\\.([A-Za-z0-9_-]+|\\*))*)$';
const IDENTIFIER = '^[A-Za-z_$][A-Za-z0-9_$]{0,63}$';
/** An invoke handler name such as `report.build` (letters, digits and `._:-`). */
const HANDLER = '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$';
const SEMVER = '^(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)([-+][0-9A-Za-z.+-]+)?$';

/** Largest accepted cartridge source, in bytes of UTF-8. */
export const MAX_SOURCE_BYTES = 256 * 1024;

/** The TypeBox schema of `manifest.json`. Unknown fields are refused: the gate must understand all of it. */
export const CartridgeManifestSchema = Type.Object(
  {
    name: Type.String({ pattern: NAME }),
    version: Type.String({ pattern: SEMVER }),
    author: Type.String({ minLength: 1, maxLength: 200 }),
    description: Type.String({ maxLength: 2000 }),
    entryPoint: Type.String({ pattern: IDENTIFIER }),
    dependencies: Type.Array(Type.String({ pattern: NAME }), { uniqueItems: true, maxItems: 64 }),
    consumes: Type.Array(Type.String({ pattern: EVENT_PATTERN, maxLength: 128 }), {
      uniqueItems: true,
      maxItems: 256,
    }),
    emits: Type.Array(Type.String({ pattern: EVENT_TYPE, maxLength: 128 }), {
      uniqueItems: true,
      maxItems: 256,
    }),
    /**
     * Payload fields of the event this cartridge writes for the cartridges after it (domain
     * pipelines). Optional; two cartridges of one pipeline may not claim the same field.
     */
    outputs: Type.Optional(
      Type.Array(Type.String({ pattern: IDENTIFIER }), { uniqueItems: true, maxItems: 64 }),
    ),
    /**
     * Invoke handlers this cartridge serves to peers (`weft invoke <node> <name>`): the call's
     * payload comes in as an event-like input, and what the cartridge returns is the result.
     * Optional; it runs sandboxed like every cartridge.
     */
    invoke: Type.Optional(Type.Array(Type.String({ pattern: HANDLER }), { uniqueItems: true, maxItems: 32 })),
  },
  { additionalProperties: false },
);

/**
 * What a cartridge declares about itself.
 * @example
 * const m: CartridgeManifest = { name: 'tagger', version: '1.0.0', author: 'ada', description: 'tags builds',
 *   entryPoint: 'process', dependencies: [], consumes: ['build.*'], emits: ['build.tagged'] };
 */
export type CartridgeManifest = Static<typeof CartridgeManifestSchema>;

/** A cartridge as data: its manifest plus its JavaScript source (UTF-8 text). */
export interface CartridgePackage {
  readonly manifest: CartridgeManifest;
  readonly source: string;
}

const manifestCheck = TypeCompiler.Compile(CartridgeManifestSchema);

/** What each field must look like, in words, for error messages. */
const FIELD_RULES: Record<string, string> = {
  name: 'a lowercase name of letters, digits, ".", "_" or "-", starting with a letter or digit, at most 64 characters',
  version: 'a semantic version such as "1.2.3"',
  author: 'a non-empty string of at most 200 characters',
  description: 'a string of at most 2000 characters',
  entryPoint: 'a JavaScript identifier naming the function to call, such as "process"',
  dependencies: 'a list of distinct cartridge names',
  consumes: 'a list of distinct event types, where a segment may be "*" (for example "build.*")',
  emits: 'a list of distinct event types (for example "build.tagged")',
  outputs: 'a list of distinct payload field names (identifiers) this cartridge writes',
  invoke: 'a list of distinct invoke handler names (letters, digits and ._:-, for example "report.build")',
};

/** Fields a manifest may leave out. */
const OPTIONAL_FIELDS: ReadonlySet<string> = new Set(['outputs', 'invoke']);

function fieldLabel(path: string): { field: string; label: string } {
  const parts = path.split('/').filter((p) => p.length > 0);
  const field = parts[0] ?? '';
  const label = parts.map((p, i) => (i === 0 ? p : /^\d+$/.test(p) ? `[${p}]` : `.${p}`)).join('');
  return { field, label: label === '' ? '(root)' : label };
}

/**
 * Checks a parsed `manifest.json` and returns it typed, or throws a {@link ManifestError} whose
 * message names the first failing field.
 * @example
 * validateManifest(JSON.parse(text)); // throws "manifest.version must be a semantic version ..." on "v1"
 */
export function validateManifest(value: unknown): CartridgeManifest {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ManifestError('manifest must be a JSON object');
  }
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!(key in CartridgeManifestSchema.properties)) {
      throw new ManifestError(`manifest has an unknown field '${key}'`, { field: key });
    }
  }
  for (const key of Object.keys(CartridgeManifestSchema.properties)) {
    if (!(key in record) && !OPTIONAL_FIELDS.has(key))
      throw new ManifestError(`manifest.${key} is missing: it must be ${FIELD_RULES[key]}`, { field: key });
  }
  if (!manifestCheck.Check(value)) {
    const first = manifestCheck.Errors(value).First();
    const { field, label } = fieldLabel(first?.path ?? '');
    const rule = FIELD_RULES[field];
    const got = first === undefined ? '' : ` (got ${describe(first.value)})`;
    throw new ManifestError(
      `manifest.${label} is invalid${got}: ${field === '' || !rule ? first?.message : `${field} must be ${rule}`}`,
      {
        field,
        path: first?.path,
      },
    );
  }
  const manifest = value as CartridgeManifest;
  if (manifest.dependencies.includes(manifest.name)) {
    throw new ManifestError(`manifest.dependencies: cartridge '${manifest.name}' cannot depend on itself`, {
      field: 'dependencies',
    });
  }
  return manifest;
}

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  if (Array.isArray(v)) return 'an array';
  if (v === null) return 'null';
  return typeof v === 'object' ? 'an object' : String(v);
}

/**
 * Validates a whole package: the manifest and the source (non-empty, at most
 * {@link MAX_SOURCE_BYTES} of UTF-8).
 * @example
 * const pkg = validatePackage({ manifest, source: 'function process(e) { return e; }' });
 */
export function validatePackage(value: { manifest: unknown; source: unknown }): CartridgePackage {
  const manifest = validateManifest(value.manifest);
  const source = value.source;
  if (typeof source !== 'string' || source.trim().length === 0) {
    throw new ManifestError(`cartridge '${manifest.name}': source must be non-empty JavaScript text`, {
      field: 'source',
    });
  }
  const bytes = Buffer.byteLength(source, 'utf8');
  if (bytes > MAX_SOURCE_BYTES) {
    throw new ManifestError(
      `cartridge '${manifest.name}': source is ${bytes} bytes, more than the ${MAX_SOURCE_BYTES} allowed`,
      { field: 'source', bytes },
    );
  }
  return { manifest, source };
}

/** File names inside a package directory. */
export const PACKAGE_FILES = { manifest: 'manifest.json', source: 'cartridge.js' } as const;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Reads a package directory: `manifest.json` (the manifest) and `cartridge.js` (UTF-8 source).
 * @throws {PackageIoError} when a file cannot be read, {@link ManifestError} when it is invalid.
 * @example
 * const pkg = await readPackageDir('./my-cartridge');
 */
export async function readPackageDir(dir: string): Promise<CartridgePackage> {
  const manifestPath = join(dir, PACKAGE_FILES.manifest);
  const sourcePath = join(dir, PACKAGE_FILES.source);
  let manifestText: string;
  let sourceBytes: Buffer;
  try {
    manifestText = await readFile(manifestPath, 'utf8');
    sourceBytes = await readFile(sourcePath);
  } catch (err) {
    throw new PackageIoError(`cannot read cartridge package in ${dir}: ${(err as Error).message}`, err);
  }
  let manifest: unknown;
  try {
    manifest = JSON.parse(manifestText);
  } catch (err) {
    throw new ManifestError(`${manifestPath} is not valid JSON: ${(err as Error).message}`, {
      field: '(file)',
    });
  }
  let source: string;
  try {
    source = utf8.decode(sourceBytes);
  } catch {
    throw new ManifestError(`${sourcePath} is not valid UTF-8`, { field: 'source' });
  }
  return validatePackage({ manifest, source });
}

/**
 * Writes a package into `dir` (created if needed) as `manifest.json` + `cartridge.js`, after
 * validating it.
 * @example
 * await writePackageDir('./out/tagger', pkg);
 */
export async function writePackageDir(dir: string, pkg: CartridgePackage): Promise<void> {
  const valid = validatePackage(pkg);
  try {
    await mkdir(dir, { recursive: true });
    await writeFile(
      join(dir, PACKAGE_FILES.manifest),
      `${JSON.stringify(valid.manifest, null, 2)}\n`,
      'utf8',
    );
    await writeFile(join(dir, PACKAGE_FILES.source), valid.source, 'utf8');
  } catch (err) {
    throw new PackageIoError(`cannot write cartridge package to ${dir}: ${(err as Error).message}`, err);
  }
}

/**
 * True when a cartridge consumes events of `type`: a pattern matches segment by segment, where
 * `*` matches any one segment, and a trailing `*` also matches any deeper segments
 * (`build.*` matches `build.failed` and `build.step.failed`; `*` matches everything).
 * The pipeline uses it to pick which events go to a cartridge; the sandbox runs what it is given.
 * @example
 * consumesEventType(manifest, 'build.failed'); // true for consumes: ['build.*']
 */
export function consumesEventType(manifest: Pick<CartridgeManifest, 'consumes'>, type: string): boolean {
  const segments = type.split('.');
  return manifest.consumes.some((pattern) => patternPartsMatch(pattern.split('.'), segments));
}

/**
 * The matching rule of {@link consumesEventType} on a pattern and a type already split at '.'
 * (for callers that split once and match often).
 * @example
 * patternPartsMatch(['build', '*'], ['build', 'step', 'failed']); // true
 */
export function patternPartsMatch(parts: readonly string[], segments: readonly string[]): boolean {
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i];
    if (part === '*' && i === parts.length - 1) return segments.length >= parts.length;
    if (i >= segments.length || (part !== '*' && part !== segments[i])) return false;
  }
  return segments.length === parts.length;
}
