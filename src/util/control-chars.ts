/**
 * Control characters in text that came from elsewhere (a feed, a peer, a producer). A terminal
 * acts on them: ESC starts sequences that clear the screen, recolour it or set the window
 * title, C1 codes (U+0080–U+009F) do the same on some terminals, a carriage return writes over
 * the line, and the bidi overrides turn what follows around. Text read from outside loses them;
 * text shown to a person shows them.
 */

/**
 * Complete escape sequences: CSI (`ESC [ … final`) and OSC (`ESC ] … BEL | ESC \`), bounded so
 * the scan stays linear on hostile input. What they would have done is no part of the text.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this finds.
const ESCAPE_SEQUENCE = /\x1b\[[0-?]{0,32}[ -/]{0,8}[@-~]|\x1b\][^\x07\x1b]{0,512}(?:\x07|\x1b\\)/g;
/** C0 except tab, line feed and carriage return (whitespace a later step collapses); DEL; C1; the bidi embeddings, overrides and isolates. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this finds.
const STRIPPED = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g;
/** Shown in text of several lines: all of the above and the carriage return; tab and line feed stay. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this finds.
const SHOWN_IN_LINES = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g;
/** Shown in text of one line (a table cell): every control character. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this finds.
const SHOWN_IN_CELL = /[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g;

function has(re: RegExp, s: string): boolean {
  re.lastIndex = 0;
  const found = re.test(s);
  re.lastIndex = 0;
  return found;
}

/**
 * `s` without terminal escape sequences and control characters. Tab, line feed and carriage
 * return stay: they are whitespace, which the text's own tidying collapses.
 * @example
 * stripControlChars('\u001b[2J\u001b[31mPWNED\u001b]0;hacked\u0007 title'); // 'PWNED title'
 */
export function stripControlChars(s: string): string {
  if (!has(STRIPPED, s)) return s;
  return s.replace(ESCAPE_SEQUENCE, '').replace(STRIPPED, '');
}

/**
 * `s` with each control character shown instead of acted on: C0 and DEL as their Unicode
 * control pictures (ESC is `␛`, a carriage return `␍`), C1 and the bidi controls as `<U+009B>`.
 * `keepLines` (default) leaves line feeds and tabs as they are, for text of several lines;
 * without it they are shown too (one table cell).
 * @example
 * visibleControlChars('\u001b[2Jhi\u202e'); // '␛[2Jhi<U+202E>'
 */
export function visibleControlChars(s: string, keepLines = true): string {
  const re = keepLines ? SHOWN_IN_LINES : SHOWN_IN_CELL;
  if (!has(re, s)) return s;
  return s.replace(re, (c) => {
    const code = c.charCodeAt(0);
    if (code < 0x20) return String.fromCharCode(0x2400 + code);
    if (code === 0x7f) return '\u2421';
    return `<U+${code.toString(16).toUpperCase().padStart(4, '0')}>`;
  });
}
