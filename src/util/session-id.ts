/** Session ids (envelope `session` / `parentSession`): here, not in envelope/, so the CLI checks one without loading the schemas. */
/**
 * A session id: what a producer (an agent session, a tmux session, a job) calls itself. A
 * letter or digit first, then letters, digits and `. _ : @ + -`, at most 200: UUIDs, tmux
 * names and `host:pid` fit; nothing a shell, a URL path or a terminal would read as syntax.
 */
export const SESSION_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,199}$';
const SESSION_ID_RE = new RegExp(SESSION_ID_PATTERN);

/**
 * Why a value is not a session id, in words, or undefined when it is one (for messages that
 * name where the value came from, e.g. `WEFT_SESSION`).
 * @example
 * sessionIdProblem('a b'); // 'must start with a letter or digit and hold only letters, digits and . _ : @ + - (got "a b")'
 */
export function sessionIdProblem(v: string): string | undefined {
  if (v.length === 0) return 'is empty';
  if (v.length > 200) return `is ${v.length} characters long; the limit is 200`;
  if (!SESSION_ID_RE.test(v)) return `must start with a letter or digit and hold only letters, digits and . _ : @ + - (got ${JSON.stringify(v.slice(0, 60))})`;
  return undefined;
}
