import { LEVEL_NAMES } from '../envelope/index.js';
import type { Notification, NotificationChange } from '../store/index.js';

/** Telegram's limit on the text of one message. */
export const TELEGRAM_MAX_TEXT = 4096;

const LEVEL_MARK = ['⚪', '🔵', '🟡', '🔴'] as const;
const KIND_WORD: Record<NotificationChange['kind'], string> = {
  created: 'new',
  updated: 'updated',
  resolved: 'resolved',
  seen: 'seen',
  claimed: 'claimed',
  in_progress: 'in progress',
  released: 'released',
};

/** Options of {@link formatNotification}. */
export interface FormatOptions {
  /**
   * `HTML` escapes the text for Telegram's HTML mode and bolds the headline; `discord` escapes
   * Discord's markdown, so an event's text shows as written (no masked link `[text](url)` that
   * hides where it goes, no heading, spoiler or code block); default plain text.
   */
  parseMode?: 'HTML' | 'discord';
  /** Payload fields shown, at most (default 8). */
  maxFields?: number;
  /** Characters of one field value, at most (default 200). */
  maxValueLength?: number;
  /** Characters of the whole message, at most (default {@link TELEGRAM_MAX_TEXT}; Discord takes 2000). */
  maxLength?: number;
}

/**
 * Renders a notification change as a readable chat message: level, type and what changed,
 * the description, the first payload fields, and the notification id to act on it.
 * @example
 * formatNotification(n, 'created');
 * // 🟡 workflow · new · ci.build.failed
 * // Build 42 failed on main
 * // branch: main
 * // #17 · entity repo/weft · from laptop
 */
export function formatNotification(
  n: Notification,
  kind: NotificationChange['kind'],
  opts: FormatOptions = {},
): string {
  const html = opts.parseMode === 'HTML';
  const esc = (s: string): string =>
    html ? escapeHtml(s) : opts.parseMode === 'discord' ? escapeDiscord(s) : s;
  const maxFields = opts.maxFields ?? 8;
  const maxValue = opts.maxValueLength ?? 200;
  const mark = LEVEL_MARK[n.level] ?? '•';
  const levelName = LEVEL_NAMES[n.level] ?? `level ${n.level}`;
  const head = `${mark} ${levelName} · ${KIND_WORD[kind]} · ${n.eventType}`;
  const lines = [html ? `<b>${esc(head)}</b>` : esc(head), esc(cutText(n.description, 1000))];

  const fields = Object.entries(n.payload).filter(([, v]) => v !== undefined && v !== null);
  for (const [k, v] of fields.slice(0, maxFields)) {
    lines.push(
      `${esc(cutText(k, 100))}: ${esc(cutText(typeof v === 'string' ? v : JSON.stringify(v), maxValue))}`,
    );
  }
  if (fields.length > maxFields) lines.push(esc(`… ${fields.length - maxFields} more field(s)`));
  if (kind === 'resolved' && n.resolution && Object.keys(n.resolution).length > 0) {
    lines.push(`resolution: ${esc(cutText(JSON.stringify(n.resolution), maxValue))}`);
  }

  const tail = [`#${n.id}`];
  if (n.entity) tail.push(`entity ${n.entity}`);
  if (n.sourceComputer) tail.push(`from ${n.sourceComputer}`);
  if (n.agentId && n.agentStatus !== 'none') tail.push(`${n.agentStatus.replace('_', ' ')} by ${n.agentId}`);
  // The last line names the notification (its #id is how a person acts on it), so a long
  // message is cut before it, never through it.
  const last = esc(cutText(tail.join(' · '), 300));
  const max = opts.maxLength ?? TELEGRAM_MAX_TEXT;
  const room = max - last.length - 1;
  // For Telegram the description and values are bounded above, so this cut is a safety net only
  // (it could split an HTML entity, which Telegram then refuses as a 400); Discord's 2000 can cut.
  if (room < 100) return cutText(`${lines.join('\n')}\n${last}`, max);
  return `${cutText(lines.join('\n'), room)}\n${last}`;
}

/**
 * Cuts `text` to at most `max` UTF-16 units, ending in `…` when cut, without splitting a
 * surrogate pair (an emoji cut in half is invalid text that some APIs refuse).
 * @example
 * cutText('abcdef', 4); // 'abc…'
 */
export function cutText(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = Math.max(0, max - 1);
  const code = text.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end--;
  return `${text.slice(0, end)}…`;
}

/**
 * Discord's markdown, escaped: a backslash before any ASCII punctuation shows the character
 * itself, so every one that starts markup (`* _ ~ \` | > # - [ ] ( ) < :` and the backslash)
 * gets one; `:` keeps an `https://` from becoming a link Discord previews.
 */
function escapeDiscord(s: string): string {
  return s.replace(/[\\*_~`|>#\-[\]()<:]/g, '\\$&');
}

function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
