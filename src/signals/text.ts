/**
 * Text tools of the signal pipeline, with no model and no network: a tokenizer, stopwords, a
 * light stemmer, keywords, a sentence splitter, a one-line summary, a normalised content hash
 * and a 64-bit SimHash. Ingest uses `oneLineSummary`, `keywords`, `contentHash` and
 * `simhash64`; clustering and the extractive summarizer use the rest.
 */
import { createHash } from 'node:crypto';
import { stripControlChars } from '../util/index.js';
import { htmlToText } from './feeds/index.js';

/**
 * Words too common to say what a text is about. English in full; the commonest function words
 * of German, French, Spanish, Dutch and Italian too, so a feed in one of those does not cluster
 * on its articles and pronouns.
 */
export const STOPWORDS: ReadonlySet<string> = new Set(
  [
    // English
    "a about above across after again against all almost along already also although always am among an and another any anybody anyone anything anyway anywhere are aren't around as at be became because become been before being below besides between beyond both but by can can't cannot could couldn't did didn't do does doesn't doing don't done down during each either else enough etc ever every everyone everything few for from further had hadn't has hasn't have haven't having he he'd he'll he's her here here's hers herself him himself his how how's however i i'd i'll i'm i've if in into is isn't it it's its itself just least less let's may maybe me might mine more most mostly much must mustn't my myself neither never no nobody none nor not nothing now of off often on once one's only onto or other others otherwise ought our ours ourselves out over own per perhaps rather same shall shan't she she'd she'll she's should shouldn't since so some somebody someone something sometimes somewhere still such than that that's the their theirs them themselves then there there's therefore these they they'd they'll they're they've this those though through thus to too toward towards under until up upon us very via was wasn't we we'd we'll we're we've were weren't what what's whatever when when's whenever where where's whereas wherever whether which while who who's whoever whole whom whose why why's will with within without won't would wouldn't yet you you'd you'll you're you've your yours yourself yourselves",
    // German
    'aber als am an auch auf aus bei bin bis da das dass dem den der des die dies diese dieser doch du durch ein eine einem einen einer eines er es für hat hatte ich ihr im in ist ja kein mit nach nicht noch nur oder sehr sein seine sich sie sind so über um und uns von vor war was wie wir wird zu zum zur',
    // French
    "au aux avec ce ces cette dans de des du elle en est et il ils je la le les leur lui mais me même mes moi mon ne nous on ou par pas pour qu que qui sa se ses son sur ta te tes toi ton tu un une vos votre vous c'est d'un d'une l'on",
    // Spanish
    'al algo como con cual cuando del desde donde el ella ellos es esa ese esta este esto hay las lo los más mi muy nos o para pero por porque que se sin sobre su sus también te tu un una uno unos y ya',
    // Dutch
    'aan bij dat de deze die dit een en het hij hoe ik in is met naar niet nog of om ook op te tot uit van voor was wat wie zij zijn',
    // Italian
    'alla alle agli anche che chi come con degli del della delle dello di gli il la le lo nel nella non per più questo questa sono sua suo tra una uno',
  ]
    .join(' ')
    .split(' '),
);

/**
 * Words frequent in news and posts that are not stopwords but rarely tell two stories apart
 * ("said", "new", "year"): `keywords` damps them rather than dropping them, since a text may
 * truly be about its "report".
 */
const COMMON_WORDS: ReadonlySet<string> = new Set(
  'according added also announced around back best big called came come comes day days early end expected first get gets give go going good got great group help high include including just know known large last later latest like long look made major make makes many month months more new news next number official old part people percent place plan plans point put read report reported reports right run said say saying says second see set show small start state statement still take taken team third three time times today told took top two use used using want way week weeks well went work world year years yesterday'.split(
    ' ',
  ),
);

/** Damping factor of a word in `keywords` and in the clustering weights. */
export function commonWordDamping(word: string): number {
  return COMMON_WORDS.has(word) ? 0.4 : 1;
}

const CJK = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}\p{Script=Thai}]/u;
const TOKEN = /[\p{L}\p{M}\p{N}]+(?:[.,'’][\p{L}\p{M}\p{N}]+)*/gu;
const NUMERIC = /^\p{N}+(?:[.,]\p{N}+)*$/u;
/** A number longer than this is an id, a phone number or a timestamp, never a topic. */
const MAX_NUMBER_CHARS = 6;
const MAX_TOKEN_CHARS = 40;

/**
 * Lowercase words of a text: letters, marks and digits (any script), in order. Numbers are kept
 * when short ("3.5", "2024", "1,000" → "1000"), dropped when long (ids, timestamps); a
 * possessive "'s" is cut; dotted words that are not numbers split ("node.js" → "node", "js").
 * Scripts written without spaces (Chinese, Japanese, Korean, Thai) give overlapping character
 * pairs, so two texts in them still share tokens.
 * @example
 * tokenize("Acme's CEO said U.S. sales rose 3.5% in 2024 (order #123456789)");
 * // ['acme', 'ceo', 'said', 'u', 's', 'sales', 'rose', '3.5', 'in', '2024', 'order']
 */
export function tokenize(text: string): string[] {
  const out: string[] = [];
  for (const m of text.normalize('NFKC').toLowerCase().matchAll(TOKEN)) {
    const raw = m[0].replace(/’/g, "'");
    if (NUMERIC.test(raw)) {
      const n = raw.replace(/,(?=\p{N}{3}(?:\D|$))/gu, '');
      if (n.length <= MAX_NUMBER_CHARS) out.push(n);
      continue;
    }
    for (const part of raw.split(/[.,]/)) {
      let w = part.endsWith("'s") ? part.slice(0, -2) : part;
      if (w.endsWith("'")) w = w.slice(0, -1);
      if (w.length === 0) continue;
      if (CJK.test(w)) {
        pushCjk(w, out);
        continue;
      }
      if (w.length > MAX_TOKEN_CHARS) continue;
      if (NUMERIC.test(w) && w.length > MAX_NUMBER_CHARS) continue;
      out.push(w);
    }
  }
  return out;
}

function pushCjk(w: string, out: string[]): void {
  const chars = Array.from(w);
  if (chars.length === 1) {
    out.push(w);
    return;
  }
  for (let i = 0; i + 1 < chars.length; i++) out.push(`${chars[i]}${chars[i + 1]}`);
}

/** Words ending in "s" that are not plurals (or whose singular is another word). */
const NOT_PLURAL = /(?:is|ics|news|series|species|ss|us)$/;

/**
 * A light English stemmer (Harman's "S" stemmer): plural forms to their singular ("queries"
 * → "query", "releases" → "release", "flaws" → "flaw"), leaving words that only look plural
 * ("analysis", "politics", "news"). Aggressive stemmers merge words that mean different things
 * ("university" and "universe"); this one only folds plurals, which is most of what paraphrases
 * of one story differ by.
 * @example
 * stem('companies'); // 'company'
 */
export function stem(word: string): string {
  if (word.length <= 3 || NOT_PLURAL.test(word)) return word;
  if (word.endsWith('ies') && !word.endsWith('eies') && !word.endsWith('aies')) return `${word.slice(0, -3)}y`;
  if (word.endsWith('es') && !word.endsWith('aes') && !word.endsWith('ees') && !word.endsWith('oes')) return word.slice(0, -1);
  if (word.endsWith('s') && !word.endsWith('us') && !word.endsWith('ss') && !word.endsWith("'s")) return word.slice(0, -1);
  return word;
}

/** Whether a token carries content: not a stopword, not a lone letter, not an apostrophe form. */
function isContent(tok: string): boolean {
  if (STOPWORDS.has(tok)) return false;
  if (tok.length < 2 && !/\p{N}/u.test(tok) && !CJK.test(tok)) return false;
  return true;
}

/**
 * The content terms of a text: tokens without stopwords, stemmed, with the surface form each
 * stem was first seen as. What clustering and the extractive summarizer compare.
 * @example
 * contentTerms('The releases were delayed'); // [{ term: 'release', word: 'releases' }, { term: 'delayed', word: 'delayed' }]
 */
export function contentTerms(text: string): Array<{ term: string; word: string }> {
  const out: Array<{ term: string; word: string }> = [];
  for (const tok of tokenize(text)) {
    if (!isContent(tok)) continue;
    out.push({ term: stem(tok), word: tok });
  }
  return out;
}

export interface KeywordOptions {
  /**
   * Document frequency of a stemmed term in a corpus the caller knows, with `docs` its size:
   * when given, weights are TF·IDF rather than TF with the built-in damping alone.
   */
  df?: (term: string) => number;
  docs?: number;
}

/**
 * The `n` words that best say what a text is about: term frequency of stemmed content words,
 * very common news words damped (see `commonWordDamping`), ties to the earlier word. Returns
 * the surface form most used for each stem; numbers are never keywords.
 * @example
 * keywords('Kestrel 4.0 ships faster queries. Kestrel queries now use the new planner.', 3);
 * // ['kestrel', 'queries', 'ships']
 */
export function keywords(text: string, n: number, opts: KeywordOptions = {}): string[] {
  const stats = new Map<string, { tf: number; first: number; forms: Map<string, number> }>();
  let pos = 0;
  for (const { term, word } of contentTerms(text)) {
    pos++;
    if (NUMERIC.test(word)) continue;
    let s = stats.get(term);
    if (!s) {
      s = { tf: 0, first: pos, forms: new Map() };
      stats.set(term, s);
    }
    s.tf++;
    s.forms.set(word, (s.forms.get(word) ?? 0) + 1);
  }
  const scored: Array<{ word: string; score: number; first: number }> = [];
  for (const [term, s] of stats) {
    let score = s.tf * commonWordDamping(term);
    if (opts.df && opts.docs) score *= Math.log((opts.docs + 1) / (opts.df(term) + 1)) + 1;
    let best = '';
    let bestN = 0;
    for (const [form, c] of s.forms) {
      if (c > bestN) {
        best = form;
        bestN = c;
      }
    }
    scored.push({ word: best, score, first: s.first });
  }
  scored.sort((a, b) => b.score - a.score || a.first - b.first);
  return scored.slice(0, Math.max(0, n)).map((s) => s.word);
}

/**
 * Text of a possibly-HTML string: scripts, styles and comments removed, block elements turned
 * into line breaks, other tags dropped, entities decoded, runs of spaces collapsed (line
 * breaks kept, since they separate sentences).
 * @example
 * stripHtml('<p>Fast &amp; small</p><p>Second</p>'); // 'Fast & small\nSecond'
 */
export function stripHtml(html: string): string {
  if (!/[<&]/.test(html)) return collapse(html);
  // One HTML reader for the whole module: the feeds' linear scanner (no regex over unclosed tags).
  return collapse(htmlToText(html, { maxChars: 200_000 }));
}

/** Whitespace collapsed, and no terminal escapes or control characters (this text is shown to people). */
function collapse(s: string): string {
  return stripControlChars(s)
    .replace(/[ \t\f\v\u00a0\u2000-\u200b\u3000]+/g, ' ')
    .replace(/ *\r?\n */g, '\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

/** Courtesy titles and Latin or reference abbreviations: a period after them never ends a sentence. */
const NEVER_ENDS = new Set(
  'mr mrs ms dr prof sr jr st mt gen col lt sgt capt rep sen gov pres rev hon vs v e.g i.e cf viz al approx ca fig figs no nos vol vols pp p ed eds dept est jan feb mar apr jun jul aug sep sept oct nov dec'.split(
    ' ',
  ),
);
/** Abbreviations that often close a sentence: a period after them ends one when a capital follows. */
const MAY_END = new Set('inc ltd co corp llc plc etc bros'.split(' '));

/**
 * Splits text into sentences. A period, `!`, `?` or ellipsis ends one when whitespace and a
 * capital, digit or quote follow; not after a courtesy title or Latin abbreviation ("Dr.",
 * "e.g.", "vs."), a dotted acronym ("U.S.", "a.m."), an initial ("J. Smith"), nor inside a
 * number ("3.5"). A blank line always ends one; a single line break does unless the next line
 * starts in lowercase (a wrapped line). HTML is not removed here (see `stripHtml`).
 * @example
 * sentences('The U.S. economy grew 2.5% in Q1, e.g. in retail. Dr. Lee disagreed! Why?');
 * // ['The U.S. economy grew 2.5% in Q1, e.g. in retail.', 'Dr. Lee disagreed!', 'Why?']
 */
export function sentences(text: string): string[] {
  const out: string[] = [];
  for (const para of text.split(/\n[ \t]*\n/)) {
    const lines = para.split('\n');
    let block = '';
    for (const line of lines) {
      const l = line.trim();
      if (l.length === 0) continue;
      if (block.length > 0 && /^\p{Ll}/u.test(l)) block += ` ${l}`;
      else {
        if (block.length > 0) splitBlock(block, out);
        block = l;
      }
    }
    if (block.length > 0) splitBlock(block, out);
  }
  return out;
}

function splitBlock(block: string, out: string[]): void {
  const re = /(?:[.!?]+|…)["'”’)\]]*(?=\s|$)/g;
  let start = 0;
  for (let m = re.exec(block); m !== null; m = re.exec(block)) {
    const end = m.index + m[0].length;
    const rest = block.slice(end);
    const next = /^\s+(\S)/.exec(rest);
    if (next && !endsSentence(block.slice(start, m.index), m[0], next[1] as string)) continue;
    push(block.slice(start, end), out);
    start = end;
  }
  push(block.slice(start), out);
}

function endsSentence(before: string, punct: string, nextChar: string): boolean {
  if (/\p{Ll}/u.test(nextChar)) return false;
  if (!punct.startsWith('.') || punct.startsWith('..')) return true;
  const word = /([\p{L}\p{N}.]+)$/u.exec(before)?.[1];
  if (word === undefined) return true;
  const lower = word.toLowerCase();
  if (NEVER_ENDS.has(lower)) return false;
  // A dotted acronym (U.S., a.m., Ph.D) or an initial (J. Smith).
  if (/^(?:\p{L}\.)+\p{L}$/u.test(word) || /^\p{Lu}$/u.test(word)) return false;
  if (MAY_END.has(lower)) return /[\p{Lu}"“'‘(]/u.test(nextChar);
  return true;
}

function push(s: string, out: string[]): void {
  const t = s.replace(/\s+/g, ' ').trim();
  if (t.length > 0) out.push(t);
}

/** Lines feeds add that say nothing about the item. */
const BOILERPLATE = [
  /^(?:read|continue reading|read more|click here|learn more|see more|watch|listen)\b/i,
  /^the post .* appeared first on/i,
  /\bappeared first on\b/i,
  /^(?:subscribe|sign up|share this|follow us|advertisement|sponsored)\b/i,
  /^(?:image|photo|credit|source):/i,
  /^comments?\b/i,
];

/** Whether a sentence is feed chrome ("Read more", "The post X appeared first on Y"). */
export function isBoilerplate(sentence: string): boolean {
  return BOILERPLATE.some((re) => re.test(sentence));
}

/**
 * One line that says what an item is: its text's first meaningful sentence (four words or
 * more, not feed chrome, not the title repeated), HTML removed, whitespace collapsed, cut at a
 * word with an ellipsis past `max` characters; the title when the text has no such sentence.
 * @example
 * oneLineSummary('Kestrel 4.0', '<p>Kestrel 4.0</p><p>The database ships a new planner. More soon.</p>');
 * // 'The database ships a new planner.'
 */
export function oneLineSummary(title: string, text: string, max = 200): string {
  const t = oneLine(stripHtml(title));
  const normTitle = normalizeForHash(t);
  for (const s of sentences(stripHtml(text))) {
    if (isBoilerplate(s)) continue;
    if (tokenize(s).filter((w) => !NUMERIC.test(w)).length < 4) continue;
    if (normalizeForHash(s) === normTitle) continue;
    return truncate(s, max);
  }
  return truncate(t, max);
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

/**
 * Cuts a string to at most `max` characters, at a word when one ends in the second half, and
 * marks the cut with an ellipsis (which counts toward `max`).
 * @example
 * truncate('one two three four', 12); // 'one two…'
 */
export function truncate(s: string, max: number): string {
  if (s.length <= max) return s;
  if (max <= 1) return '…'.slice(0, Math.max(0, max));
  let cut = max - 1;
  // Never split a surrogate pair.
  if (/[\uDC00-\uDFFF]/.test(s.charAt(cut))) cut--;
  const space = s.lastIndexOf(' ', cut);
  if (space > cut / 2) cut = space;
  return `${s.slice(0, cut).replace(/[\s,;:—–-]+$/u, '')}…`;
}

/** Case, whitespace, punctuation and markup removed: what two copies of one text share. */
function normalizeForHash(s: string): string {
  return stripHtml(s)
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();
}

/**
 * A hash of an item's title and text that ignores case, whitespace, punctuation and markup, so
 * a copy re-published with other quotes or line breaks hashes the same. SHA-256, 32 hex digits
 * (128 bits).
 * @example
 * contentHash('Hello, World', '<b>It works.</b>') === contentHash('hello world', 'It  works'); // true
 */
export function contentHash(title: string, text: string): string {
  return createHash('sha256')
    .update(normalizeForHash(title))
    .update('\u0000')
    .update(normalizeForHash(text))
    .digest('hex')
    .slice(0, 32);
}

/** Feature hashes recur across items (common shingles); remembering them halves the cost of a batch. */
const featureCache = new Map<string, readonly [number, number]>();
const FEATURE_CACHE_MAX = 100_000;

function featureHash(f: string): readonly [number, number] {
  const hit = featureCache.get(f);
  if (hit) return hit;
  const d = createHash('sha256').update(f).digest();
  const h = [d.readUInt32BE(0), d.readUInt32BE(4)] as const;
  if (featureCache.size >= FEATURE_CACHE_MAX) featureCache.clear();
  featureCache.set(f, h);
  return h;
}

/** The SimHash of a text whose features are all missing (an empty text). */
export const EMPTY_SIMHASH = '0000000000000000';

/**
 * The 64-bit SimHash (Charikar) of a text, as 16 hex digits. Features are word 2-shingles of
 * the tokens (stopwords kept: near-duplicate detection is about form, not topic), each hashed
 * with SHA-256 (first 64 bits) and weighted by its count. Two texts a few words apart differ in
 * a few bits; a Hamming distance ≤ 3 marks copies with trivial edits (case, punctuation, a word
 * or two in a long text). A text of one token uses the token; an empty one gives all zeros.
 * @example
 * hamming(simhash64('Storm Ingrid floods the north coast'), simhash64('Storm Ingrid floods the north coast!')); // 0
 */
export function simhash64(text: string): string {
  const toks = tokenize(text);
  if (toks.length === 0) return EMPTY_SIMHASH;
  const counts = new Map<string, number>();
  if (toks.length === 1) counts.set(toks[0] as string, 1);
  for (let i = 0; i + 1 < toks.length; i++) {
    const f = `${toks[i]} ${toks[i + 1]}`;
    counts.set(f, (counts.get(f) ?? 0) + 1);
  }
  const v = new Float64Array(64);
  for (const [f, w] of counts) {
    const [hi, lo] = featureHash(f);
    for (let b = 0; b < 32; b++) {
      v[b] = (v[b] as number) + ((hi >>> (31 - b)) & 1 ? w : -w);
      v[32 + b] = (v[32 + b] as number) + ((lo >>> (31 - b)) & 1 ? w : -w);
    }
  }
  let hi = 0;
  let lo = 0;
  for (let b = 0; b < 32; b++) {
    hi = (hi << 1) | ((v[b] as number) > 0 ? 1 : 0);
    lo = (lo << 1) | ((v[32 + b] as number) > 0 ? 1 : 0);
  }
  return hex32(hi) + hex32(lo);
}

function hex32(n: number): string {
  return (n >>> 0).toString(16).padStart(8, '0');
}

const HEX16 = /^[0-9a-f]{16}$/i;

/** Whether a string is a SimHash as `simhash64` writes it (16 hex digits). */
export function isSimhash(s: string): boolean {
  return HEX16.test(s);
}

/** The two 32-bit halves of a SimHash. @throws {TypeError} when it is not 16 hex digits. */
export function simhashHalves(s: string): [number, number] {
  if (!HEX16.test(s)) throw new TypeError(`not a 64-bit SimHash (16 hex digits): '${s}'`);
  return [Number.parseInt(s.slice(0, 8), 16), Number.parseInt(s.slice(8), 16)];
}

/** Set bits of a 32-bit integer. */
export function popcount32(x: number): number {
  let v = x >>> 0;
  v -= (v >>> 1) & 0x55555555;
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24) & 0xff;
}

/**
 * Bits in which two SimHashes differ (0..64).
 * @throws {TypeError} when either is not 16 hex digits.
 * @example
 * hamming('00000000000000ff', '000000000000000f'); // 4
 */
export function hamming(a: string, b: string): number {
  const [ah, al] = simhashHalves(a);
  const [bh, bl] = simhashHalves(b);
  return popcount32(ah ^ bh) + popcount32(al ^ bl);
}
