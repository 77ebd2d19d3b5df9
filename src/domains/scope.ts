/**
 * Event-type patterns as sets: a segment `*` is any one segment, a trailing `*` is one or more
 * segments (the manifest's `consumes` rule). Scope checks ask whether one pattern's set lies
 * inside another's.
 */
import { consumesEventType, patternPartsMatch } from '../sovereignty/index.js';

/** True when `type` matches `pattern`. */
export function matchesPattern(pattern: string, type: string): boolean {
  return consumesEventType({ consumes: [pattern] }, type);
}

/**
 * A matcher for a fixed list of patterns, for the hot path (the domain router runs it on every
 * event): the patterns are split once; exact types are a set lookup.
 * @example
 * const m = patternMatcher(['build.*', 'deploy.done']); m('build.failed'); // true
 */
export function patternMatcher(patterns: readonly string[]): (type: string) => boolean {
  const exact = new Set(patterns.filter((p) => !p.split('.').includes('*')));
  const wild = patterns.filter((p) => !exact.has(p)).map((p) => p.split('.'));
  if (wild.length === 0) return (type) => exact.has(type);
  return (type) => {
    if (exact.has(type)) return true;
    const segments = type.split('.');
    return wild.some((parts) => patternPartsMatch(parts, segments));
  };
}

/**
 * True when every event type `inner` matches is also matched by `outer`.
 * @example
 * patternWithin('domain.marketing.post.*', 'domain.marketing.*'); // true
 * patternWithin('domain.*', 'domain.marketing.*'); // false
 */
export function patternWithin(inner: string, outer: string): boolean {
  const I = inner.split('.');
  const O = outer.split('.');
  const innerOpen = I[I.length - 1] === '*';
  const outerOpen = O[O.length - 1] === '*';
  // Segment i of inner fits segment i of outer when outer's is `*` or both are the same literal.
  const fits = (i: number) => O[i] === '*' || (I[i] !== '*' && I[i] === O[i]);
  if (outerOpen) {
    // outer: its first k-1 segments, then one or more of anything.
    if (I.length < O.length) return false;
    for (let i = 0; i < O.length - 1; i++) if (!fits(i)) return false;
    return true;
  }
  // outer has exactly |O| segments: inner must have that many, and no open tail.
  if (innerOpen || I.length !== O.length) return false;
  for (let i = 0; i < O.length; i++) if (!fits(i)) return false;
  return true;
}

/** True when `pattern` lies inside one of `scope`. */
export function withinAny(pattern: string, scope: readonly string[]): boolean {
  return scope.some((outer) => patternWithin(pattern, outer));
}
