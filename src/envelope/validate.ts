import type { TSchema } from '@sinclair/typebox';
import { type TypeCheck, TypeCompiler, type ValueError } from '@sinclair/typebox/compiler';
import { ValidationError } from '../errors/index.js';
import { EmitInput, Envelope, SESSION_ID_PATTERN, sessionIdProblem } from './envelope.js';

/** A compiled validator that throws a ValidationError naming the first failing field. */
export interface Validator<T> {
  check(value: unknown): value is T;
  /** Returns the value typed, or throws naming `what` and the field. */
  assert(value: unknown, what: string): T;
  /** The first problem, in words (`message`) with its field path, or undefined when valid. */
  firstError(value: unknown): { path: string; message: string } | undefined;
}

/**
 * Compiles a schema. Errors read as a person would say them: every missing field named at
 * once, a range as `from 0 to 3`, a choice of literals listed; a union reports the problems
 * of the variant the value comes closest to, not "expected union value".
 */
export function compile<T>(schema: TSchema): Validator<T> {
  const c: TypeCheck<TSchema> = TypeCompiler.Compile(schema);
  const variants = unionVariants(schema)?.map((s) => TypeCompiler.Compile(s));
  const firstError = (value: unknown) => {
    if (c.Check(value)) return undefined;
    // The variant whose first error is deepest is the one the producer meant.
    let errs = [...c.Errors(value)];
    if (variants) {
      let best: ValueError[] | undefined;
      for (const v of variants) {
        const e = [...v.Errors(value)];
        if (e.length === 0) continue;
        if (!best || depthOf(e[0] as ValueError) > depthOf(best[0] as ValueError) || (depthOf(e[0] as ValueError) === depthOf(best[0] as ValueError) && e.length < best.length)) best = e;
      }
      if (best) errs = best;
    }
    return describe(errs);
  };
  return {
    check: (v): v is T => c.Check(v),
    firstError,
    assert(value, what) {
      if (c.Check(value)) return value as T;
      const e = firstError(value) ?? { path: '/', message: 'is invalid' };
      throw new ValidationError(`${what}: field '${e.path}' ${e.message}`, {
        field: e.path,
        reason: e.message,
      });
    },
  };
}

/**
 * `compile`, done on first use: for the catalog's many types, most of which a node never sees
 * (each compiled validator is generated code the node would otherwise keep from its start).
 */
export function compileLazily<T>(schema: TSchema): Validator<T> {
  let v: Validator<T> | undefined;
  const get = () => {
    v ??= compile<T>(schema);
    return v;
  };
  return {
    check: (value): value is T => get().check(value),
    assert: (value, what) => get().assert(value, what),
    firstError: (value) => get().firstError(value),
  };
}

function unionVariants(schema: TSchema): TSchema[] | undefined {
  const any = (schema as { anyOf?: TSchema[] }).anyOf;
  return Array.isArray(any) && any.every((s) => (s as { type?: string }).type === 'object') ? any : undefined;
}

function depthOf(e: ValueError): number {
  return e.path === '' ? 0 : e.path.split('/').length - 1;
}

/** The first error in words; every missing property of the same object is named together. */
function describe(errs: ValueError[]): { path: string; message: string } | undefined {
  const first = errs[0];
  if (!first) return undefined;
  const path = first.path === '' ? '/' : first.path;
  if (/required property/i.test(first.message)) {
    const parent = first.path.slice(0, first.path.lastIndexOf('/'));
    const missing = errs
      .filter((e) => /required property/i.test(e.message) && e.path.slice(0, e.path.lastIndexOf('/')) === parent)
      .map((e) => e.path.slice(e.path.lastIndexOf('/') + 1));
    const unique = [...new Set(missing)];
    return { path, message: `is missing (required${unique.length > 1 ? `; missing fields: ${unique.join(', ')}` : ''})` };
  }
  const s = first.schema as { type?: string; minimum?: number; maximum?: number; anyOf?: Array<{ const?: unknown }>; const?: unknown; maxLength?: number; minLength?: number; pattern?: string; description?: string };
  if (Array.isArray(s.anyOf) && s.anyOf.length > 0 && s.anyOf.every((m) => m.const !== undefined)) {
    return { path, message: `must be one of ${s.anyOf.map((m) => String(m.const)).join(', ')} (got ${JSON.stringify(first.value)?.slice(0, 60)})` };
  }
  if (s.pattern === SESSION_ID_PATTERN && typeof first.value === 'string') {
    const problem = sessionIdProblem(first.value);
    if (problem) return { path, message: problem };
  }
  // A pattern missed: its description says what is wanted (a regular expression says it only to a few).
  if (s.pattern !== undefined && s.description && typeof first.value === 'string' && !new RegExp(s.pattern).test(first.value)) {
    return { path, message: `must be ${s.description} (got ${JSON.stringify(first.value.slice(0, 60))})` };
  }
  if ((s.type === 'integer' || s.type === 'number') && s.minimum !== undefined && s.maximum !== undefined) {
    return { path, message: `must be ${s.type === 'integer' ? 'an integer' : 'a number'} from ${s.minimum} to ${s.maximum} (got ${JSON.stringify(first.value)?.slice(0, 60)})` };
  }
  return { path, message: lowerFirst(first.message) };
}

function lowerFirst(s: string): string {
  return s.length > 0 ? s[0]?.toLowerCase() + s.slice(1) : s;
}

export const envelopeValidator = compile<Envelope>(Envelope);
export const emitInputValidator = compile<EmitInput>(EmitInput);
