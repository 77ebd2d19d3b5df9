/** Rows as SQLite returns them (snake_case columns) turned into the camelCase records the code uses. */

/** `next_attempt_at` → `nextAttemptAt`, at the type level. */
export type CamelCase<S extends string> = S extends `${infer Head}_${infer Tail}` ? `${Head}${Capitalize<CamelCase<Tail>>}` : S;

/** A row type with every column renamed to camelCase, values unchanged. */
export type Camelized<R> = { [K in keyof R as K extends string ? CamelCase<K> : K]: R[K] };

const cache = new Map<string, string>();

function camel(column: string): string {
  let name = cache.get(column);
  if (name === undefined) {
    name = column.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
    if (cache.size < 1024) cache.set(column, name);
  }
  return name;
}

/**
 * Renames every column of a row to camelCase. Columns that need more than a rename (JSON text,
 * 0/1 booleans) are then overridden by the caller, which keeps each mapper to its real work.
 * @example
 * const record = { ...camelRow(row), actionable: row.actionable === 1 };
 */
export function camelRow<R extends object>(row: R): Camelized<R> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(row)) out[camel(key)] = value;
  return out as Camelized<R>;
}

/**
 * A WHERE clause of the conditions whose value is given (not undefined), joined by AND, with
 * their values in order: the shape every filtered listing builds. Empty when none is given.
 * @example
 * const w = whereGiven([['channel = ?', f.channel], ['id < ?', f.cursor]]);
 * db.prepare(`SELECT * FROM deliveries ${w.sql} ORDER BY id DESC LIMIT ?`).all(...w.args, 50);
 */
export function whereGiven(conditions: ReadonlyArray<readonly [sql: string, value: unknown]>): { sql: string; args: unknown[] } {
  const given = conditions.filter(([, v]) => v !== undefined);
  return { sql: given.length === 0 ? '' : `WHERE ${given.map(([c]) => c).join(' AND ')}`, args: given.map(([, v]) => v) };
}
