/**
 * HTML to plain text for feed summaries and content: tags dropped, entities decoded, script and
 * style bodies skipped, block elements turned into line breaks. One linear pass over a bounded
 * input (no regular expression that can backtrack), so a hostile feed costs time in proportion
 * to its size and no more.
 */
import { decodeHTML } from 'entities';
import { stripControlChars } from '../../util/index.js';

/** Longest text any field keeps. */
export const MAX_TEXT_CHARS = 20_000;
/** Longest title. */
export const MAX_TITLE_CHARS = 500;

/** HTML read per field at most: ten times the text kept leaves room for markup. */
const INPUT_FACTOR = 10;
/** How far a tag is read with quoted attributes honoured before the first `>` is taken instead. */
const QUOTED_TAG_WINDOW = 256;

/** Elements whose content is not text a reader sees. */
const SKIP = new Set([
  'script',
  'style',
  'noscript',
  'template',
  'head',
  'title',
  'iframe',
  'object',
  'svg',
  'math',
  'select',
]);
/** Elements that break a line. */
const BLOCK = new Set([
  'address',
  'article',
  'aside',
  'blockquote',
  'br',
  'dd',
  'div',
  'dl',
  'dt',
  'figcaption',
  'figure',
  'footer',
  'h1',
  'h2',
  'h3',
  'h4',
  'h5',
  'h6',
  'header',
  'hr',
  'li',
  'main',
  'nav',
  'ol',
  'p',
  'pre',
  'section',
  'table',
  'tbody',
  'td',
  'tfoot',
  'th',
  'thead',
  'tr',
  'ul',
]);
/** Tags recognised in text that is plain by intent (titles): anything else with a `<` is the author's text. */
const COMMON = new Set([
  ...BLOCK,
  'a',
  'abbr',
  'b',
  'cite',
  'code',
  'em',
  'font',
  'i',
  'img',
  'kbd',
  'mark',
  'q',
  's',
  'small',
  'span',
  'strong',
  'sub',
  'sup',
  'u',
]);

/** Options of {@link htmlToText}. */
export interface HtmlToTextOptions {
  /** Characters of text kept (default 20,000); longer text ends in `…`. */
  maxChars?: number;
  /** Only strip well-known HTML tags; for titles, where `a <b> c` may be meant literally. */
  knownTagsOnly?: boolean;
}

/**
 * The text a reader of `html` sees.
 * @example
 * htmlToText('<p>Fish &amp; chips</p><script>x()</script><p>daily</p>'); // 'Fish & chips\ndaily'
 */
export function htmlToText(html: string, opts: HtmlToTextOptions = {}): string {
  const max = opts.maxChars ?? MAX_TEXT_CHARS;
  const src = html.length > max * INPUT_FACTOR ? html.slice(0, max * INPUT_FACTOR) : html;
  const known = opts.knownTagsOnly ?? false;
  const out: string[] = [];
  let outLen = 0;
  const n = src.length;
  let textStart = 0;
  let i = 0;

  const emitText = (end: number): void => {
    if (end <= textStart) return;
    const raw = src.slice(textStart, end);
    const text = raw.includes('&') ? decodeHTML(raw) : raw;
    out.push(text);
    outLen += text.length;
  };
  const emitBreak = (): void => {
    out.push('\n');
    outLen++;
  };

  while (i < n && outLen < max * 2) {
    const lt = src.indexOf('<', i);
    if (lt < 0) break;
    const next = src.charCodeAt(lt + 1);
    if (src.startsWith('<!--', lt)) {
      emitText(lt);
      const end = src.indexOf('-->', lt + 4);
      i = textStart = end < 0 ? n : end + 3;
      continue;
    }
    if (src.startsWith('<![CDATA[', lt)) {
      emitText(lt);
      const end = src.indexOf(']]>', lt + 9);
      const body = src.slice(lt + 9, end < 0 ? n : end);
      out.push(body);
      outLen += body.length;
      i = textStart = end < 0 ? n : end + 3;
      continue;
    }
    if (!known && (next === 0x21 /* ! */ || next === 0x3f) /* ? */) {
      emitText(lt);
      const end = src.indexOf('>', lt + 2);
      i = textStart = end < 0 ? n : end + 1;
      continue;
    }
    const closing = next === 0x2f; /* / */
    const nameStart = closing ? lt + 2 : lt + 1;
    let j = nameStart;
    while (j < n && isNameChar(src.charCodeAt(j), j === nameStart)) j++;
    const name = src.slice(nameStart, j).toLowerCase();
    if (name === '' || (known && !COMMON.has(name))) {
      i = lt + 1; // a literal '<'
      continue;
    }
    const end = tagEnd(src, j);
    emitText(lt);
    if (end < 0) {
      i = textStart = n; // an unterminated tag at the end: the rest is markup
      break;
    }
    i = textStart = end + 1;
    if (!closing && SKIP.has(name) && src.charCodeAt(end - 1) !== 0x2f) {
      i = textStart = skipPast(src, end + 1, name);
      continue;
    }
    if (BLOCK.has(name)) emitBreak();
    else if (name === 'img' || name === 'td' || name === 'th') out.push(' ');
  }
  if (outLen < max * 2) emitText(n);
  return clipText(collapse(out.join('')), max);
}

/**
 * Plain text made tidy: entities decoded once more when asked (RSS titles are often escaped
 * twice), well-known tags removed, whitespace collapsed, bounded.
 * @example
 * plainText('Fish &amp; <b>chips</b>', { maxChars: 500, html: true }); // 'Fish & chips'
 */
export function plainText(s: string, opts: { maxChars?: number; html?: boolean } = {}): string {
  const max = opts.maxChars ?? MAX_TEXT_CHARS;
  if (opts.html) return htmlToText(s, { maxChars: max, knownTagsOnly: true }).replace(/\n/g, ' ');
  return clipText(
    collapse(s.length > max * INPUT_FACTOR ? s.slice(0, max * INPUT_FACTOR) : s).replace(/\n/g, ' '),
    max,
  );
}

/**
 * `s` cut to at most `max` characters, ending in `…` when cut, never inside a surrogate pair.
 * @example
 * clipText('abcdef', 4); // 'abc…'
 */
export function clipText(s: string, max: number): string {
  if (s.length <= max) return s;
  let cut = Math.max(0, max - 1);
  const c = s.charCodeAt(cut - 1);
  if (c >= 0xd800 && c <= 0xdbff) cut--;
  return `${s.slice(0, cut).trimEnd()}…`;
}

/**
 * Spaces collapsed within lines, blank lines removed, ends trimmed; terminal escapes and other
 * control characters out (decoded entities such as `&#27;` included): every text a feed gives
 * passes here, and ends in notifications a terminal prints.
 */
function collapse(s: string): string {
  return stripControlChars(s)
    .replace(/[^\S\n]+/g, ' ')
    .replace(/ ?\n[\s]*/g, '\n')
    .trim();
}

function isNameChar(c: number, first: boolean): boolean {
  const alpha = (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a);
  if (first) return alpha;
  return alpha || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x3a || c === 0x5f;
}

/** Index of the `>` that ends a tag whose name ends at `from`, honouring quotes near the tag; -1 if none. */
function tagEnd(src: string, from: number): number {
  let quote = 0;
  const limit = Math.min(src.length, from + QUOTED_TAG_WINDOW);
  for (let k = from; k < limit; k++) {
    const c = src.charCodeAt(k);
    if (quote !== 0) {
      if (c === quote) quote = 0;
    } else if (c === 0x22 || c === 0x27) quote = c;
    else if (c === 0x3e) return k;
  }
  // A long or unbalanced attribute list: the first '>' ends it, which keeps the pass linear.
  return src.indexOf('>', from);
}

/** Index just past `</name ...>` from `from`, or the end. */
function skipPast(src: string, from: number, name: string): number {
  let k = from;
  for (;;) {
    const open = src.indexOf('</', k);
    if (open < 0) return src.length;
    const after = open + 2 + name.length;
    if (src.slice(open + 2, after).toLowerCase() === name && !isNameChar(src.charCodeAt(after), false)) {
      const end = src.indexOf('>', after);
      return end < 0 ? src.length : end + 1;
    }
    k = open + 2;
  }
}
