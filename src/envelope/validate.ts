import type { TSchema } from '@sinclair/typebox';
import { type TypeCheck, TypeCompiler } from '@sinclair/typebox/compiler';
import { ValidationError } from '../errors/index.js';
import { EmitInput, Envelope } from './envelope.js';

/** A compiled validator that throws a ValidationError naming the first failing field. */
export interface Validator<T> {
  check(value: unknown): value is T;
  /** Returns the value typed, or throws naming `what` and the field. */
  assert(value: unknown, what: string): T;
  /** The first problem as `path: message`, or undefined when valid. */
  firstError(value: unknown): { path: string; message: string } | undefined;
}

export function compile<T>(schema: TSchema): Validator<T> {
  const c: TypeCheck<TSchema> = TypeCompiler.Compile(schema);
  const firstError = (value: unknown) => {
    const e = c.Errors(value).First();
    if (!e) return undefined;
    return { path: e.path === '' ? '/' : e.path, message: e.message };
  };
  return {
    check: (v): v is T => c.Check(v),
    firstError,
    assert(value, what) {
      if (c.Check(value)) return value as T;
      const e = firstError(value) ?? { path: '/', message: 'invalid' };
      throw new ValidationError(`${what}: field '${e.path}' ${lowerFirst(e.message)}`, {
        field: e.path,
        reason: e.message,
      });
    },
  };
}

function lowerFirst(s: string): string {
  return s.length > 0 ? s[0]?.toLowerCase() + s.slice(1) : s;
}

export const envelopeValidator = compile<Envelope>(Envelope);
export const emitInputValidator = compile<EmitInput>(EmitInput);
