/** Human output for the CLI: aligned tables and trees. */
import { visibleControlChars } from '../util/index.js';

/**
 * Text for a terminal: control characters shown (ESC as `␛`, C1 and bidi controls as
 * `<U+009B>`) instead of acted on. Events from any producer or feed carry text, and a title
 * holding `ESC [2J` would otherwise clear the screen of whoever lists it.
 * @example
 * forTerminal('\u001b[2Jhi'); // '␛[2Jhi'
 */
export function forTerminal(text: string): string {
  return visibleControlChars(text, true);
}

export function table(rows: Array<Record<string, unknown>>, columns?: string[]): string {
  if (rows.length === 0) return '(none)';
  const cols = columns ?? Object.keys(rows[0] as object);
  const cells = rows.map((r) => cols.map((c) => cell(r[c])));
  const widths = cols.map((c, i) => Math.max(c.length, ...cells.map((row) => (row[i] as string).length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i] as number)).join('  ').trimEnd();
  return [line(cols.map((c) => c.toUpperCase())), ...cells.map(line)].join('\n');
}

/** One line of at most 60 characters, control characters (line breaks too) shown, not acted on. */
function cell(v: unknown): string {
  if (v === null || v === undefined) return '-';
  if (typeof v === 'object') return truncate(visibleControlChars(JSON.stringify(v), false), 60);
  return truncate(visibleControlChars(String(v), false), 60);
}

function truncate(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

export interface TreeNode {
  label: string;
  children: TreeNode[];
}

export function tree(root: TreeNode): string {
  const out: string[] = [root.label];
  const walk = (n: TreeNode, prefix: string) => {
    n.children.forEach((c, i) => {
      const last = i === n.children.length - 1;
      out.push(`${prefix}${last ? '└─ ' : '├─ '}${c.label}`);
      walk(c, prefix + (last ? '   ' : '│  '));
    });
  };
  walk(root, '');
  return out.join('\n');
}

const LEVELS = ['infra', 'oper', 'workflow', 'business'];
export function levelName(n: number): string {
  return LEVELS[n] ?? String(n);
}

/** A pino JSON line as one readable line. */
export function prettyLog(line: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const { time, level, msg, pid, hostname, ...rest } = o;
  void pid;
  void hostname;
  const lv = ({ 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' } as Record<number, string>)[level as number] ?? String(level);
  const extra = Object.keys(rest).length ? ` ${JSON.stringify(rest)}` : '';
  return `${new Date(time as number).toISOString()} ${lv.padEnd(5)} ${String(msg ?? '')}${extra}`;
}
