/**
 * Synthesis of a cluster (`signal.synthesis.ready`): a built-in extractive summarizer that
 * needs no model or network (the default), and one that runs a program the user configured
 * (any AI CLI they have) with the cluster as JSON on stdin, falling back to the extractive one
 * when the program fails. Sources always come from the cluster's items, never from the
 * program: a summarizer cannot invent a source.
 */
import { basename } from 'node:path';
import { type Logger, minimalEnv, runProgram, silentLogger, splitCommandLine } from '../util/index.js';
import { normalizeUrl } from './ingest.js';
import { commonWordDamping, contentTerms, hamming, isBoilerplate, simhash64, sentences, stripHtml, truncate } from './text.js';
import type { SignalItem, Synthesis, SynthesisPayload } from './types.js';

/** What a summarizer is given: a cluster and its items. */
export interface SummarizeInput {
  clusterId: string;
  /** The cluster's title (its central item's). */
  title: string;
  tags: readonly string[];
  items: readonly SignalItem[];
}

/** What a summarizer returns. */
export interface SummarizeResult {
  synthesis: Synthesis;
  /** `extractive` or `command:<program>`: the one that actually produced `synthesis`. */
  summarizer: string;
  /** Set when the configured summarizer failed and the extractive one stood in: why. */
  fallback?: string;
}

/** A way to turn a cluster into a synthesis; the service picks one from config. */
export interface Summarizer {
  /** `extractive` or `command:<program>`. */
  readonly name: string;
  /**
   * Summarizes a cluster. Never rejects for a failing summarizer (it falls back); rejects only
   * when `signal` aborts.
   */
  summarize(input: SummarizeInput, options?: { signal?: AbortSignal }): Promise<SummarizeResult>;
}

/** Options of `extractiveSummary`. */
export interface ExtractiveOptions {
  /** Key points at most. Default 5. */
  maxKeyPoints?: number;
  /** Key points wanted at least; item titles fill in when the texts have too few sentences. Default 3. */
  minKeyPoints?: number;
  /** Length of the summary (one or two sentences). Default 320. */
  maxSummaryChars?: number;
  /** Length of one key point. Default 200. */
  maxPointChars?: number;
  /** Sources listed at most. Default 20. */
  maxSources?: number;
  /** Sentences read per item. Default 40. */
  maxSentencesPerItem?: number;
}

interface Candidate {
  text: string;
  item: number;
  position: number;
  terms: Set<string>;
  simhash: string;
  score: number;
}

/** Words a sentence must have to be a candidate, and at most (longer ones are run-ons or lists). */
const MIN_WORDS = 5;
const MAX_WORDS = 60;

/**
 * A synthesis made by picking sentences, with no model and no network.
 * - Each term weighs ln(1 + items holding it) · (1 + share of sources holding it), common news
 *   words damped: what many sources say weighs most.
 * - A sentence scores the sum of its distinct terms' weights over √(its term count) (long
 *   sentences do not win by length), with a bonus for an item's first sentence (the lede).
 * - Taken best first; a sentence is dropped when it is near-identical to one taken (term
 *   Jaccard ≥ 0.5 or SimHash within 3 bits), and one item gives at most two while others have
 *   any left, so the points come from several tellings.
 * - Summary: the best sentence (and the second, if both fit `maxSummaryChars`); key points:
 *   the next 3–5, item titles filling in when the texts run short.
 * - Sources: one per distinct URL (as ingest normalises it: tracking parameters, fragment and
 *   trailing slash ignored), earliest first, every source listed before any gets a second entry.
 * - Confidence: 0.3 for one source (uncorroborated), rising with distinct sources and with how
 *   many of them share the cluster's top terms (agreement), up to 0.95.
 * @example
 * const s = extractiveSummary(store.members(clusterId));
 * // { summary: 'Kestrel 4.0 ships a rewritten query planner.', key_points: [...], sources: [...], confidence: 0.78 }
 */
export function extractiveSummary(items: readonly SignalItem[], opts: ExtractiveOptions = {}): Synthesis {
  const maxPoints = opts.maxKeyPoints ?? 5;
  const minPoints = Math.min(opts.minKeyPoints ?? 3, maxPoints);
  const maxSummary = opts.maxSummaryChars ?? 320;
  const maxPoint = opts.maxPointChars ?? 200;
  if (items.length === 0) return { summary: '', key_points: [], sources: [], confidence: 0 };

  const sourceCount = new Set(items.map((it) => it.sourceId)).size;
  // Terms per item, and in how many items and sources each appears.
  const itemsWith = new Map<string, number>();
  const sourcesWith = new Map<string, Set<string>>();
  const itemSentences: string[][] = [];
  items.forEach((it) => {
    const body = stripHtml(it.text || it.summary);
    const sents = sentences(body).slice(0, opts.maxSentencesPerItem ?? 40);
    if (it.summary && !sents.some((s) => s === it.summary)) sents.unshift(stripHtml(it.summary));
    itemSentences.push(sents);
    const terms = new Set([it.title, ...sents].flatMap((s) => contentTerms(s).map((t) => t.term)));
    for (const t of terms) {
      itemsWith.set(t, (itemsWith.get(t) ?? 0) + 1);
      let ss = sourcesWith.get(t);
      if (!ss) {
        ss = new Set();
        sourcesWith.set(t, ss);
      }
      ss.add(it.sourceId);
    }
  });
  const weight = (t: string) => Math.log(1 + (itemsWith.get(t) ?? 0)) * (1 + (sourcesWith.get(t)?.size ?? 0) / sourceCount) * commonWordDamping(t);

  const candidates: Candidate[] = [];
  itemSentences.forEach((sents, item) => {
    sents.forEach((text, position) => {
      if (isBoilerplate(text)) return;
      const words = text.split(/\s+/).length;
      if (words < MIN_WORDS || words > MAX_WORDS) return;
      const terms = new Set(contentTerms(text).map((t) => t.term));
      if (terms.size === 0) return;
      let sum = 0;
      for (const t of terms) sum += weight(t);
      const score = (sum / Math.sqrt(terms.size)) * (position === 0 ? 1.15 : 1);
      candidates.push({ text, item, position, terms, simhash: simhash64(text), score });
    });
  });
  candidates.sort((a, b) => b.score - a.score || a.item - b.item || a.position - b.position);

  const taken: Candidate[] = [];
  const perItem = new Map<number, number>();
  const nearTaken = (c: { terms: Set<string>; simhash: string }) => taken.some((t) => termJaccard(t.terms, c.terms) >= 0.5 || hamming(t.simhash, c.simhash) <= 3);
  const want = maxPoints + 2;
  // First pass: at most two sentences per item; second pass: the rest, if still short.
  for (const limit of [2, Number.POSITIVE_INFINITY]) {
    for (const c of candidates) {
      if (taken.length >= want) break;
      if (taken.includes(c) || (perItem.get(c.item) ?? 0) >= limit || nearTaken(c)) continue;
      taken.push(c);
      perItem.set(c.item, (perItem.get(c.item) ?? 0) + 1);
    }
  }

  let summary = '';
  let used = 0;
  if (taken.length > 0) {
    summary = (taken[0] as Candidate).text;
    used = 1;
    const second = taken[1];
    if (second && summary.length + 1 + second.text.length <= maxSummary) {
      summary = `${summary} ${second.text}`;
      used = 2;
    }
  } else {
    summary = stripHtml(items[0]?.title ?? '');
  }
  summary = truncate(summary, maxSummary);
  const keyPoints = taken.slice(used, used + maxPoints).map((c) => truncate(c.text, maxPoint));
  if (keyPoints.length < minPoints) {
    const have = [summary, ...keyPoints].map((p) => ({ terms: new Set(contentTerms(p).map((t) => t.term)), simhash: simhash64(p) }));
    for (const it of items) {
      if (keyPoints.length >= minPoints) break;
      const title = stripHtml(it.title);
      const terms = new Set(contentTerms(title).map((t) => t.term));
      if (terms.size === 0) continue;
      const sh = simhash64(title);
      if (have.some((h) => termJaccard(h.terms, terms) >= 0.5 || hamming(h.simhash, sh) <= 3)) continue;
      keyPoints.push(truncate(title, maxPoint));
      have.push({ terms, simhash: sh });
    }
  }

  return { summary, key_points: keyPoints, sources: mergeSources(items, opts.maxSources ?? 20), confidence: confidence(items, sourcesWith, weight, sourceCount) };
}

function termJaccard(a: ReadonlySet<string>, b: ReadonlySet<string>): number {
  if (a.size === 0 && b.size === 0) return 0;
  let inter = 0;
  for (const x of a) if (b.has(x)) inter++;
  return inter / (a.size + b.size - inter);
}

function confidence(items: readonly SignalItem[], sourcesWith: Map<string, Set<string>>, weight: (t: string) => number, sourceCount: number): number {
  if (items.length === 0) return 0;
  if (sourceCount <= 1) return 0.3;
  const top = [...sourcesWith.keys()].sort((a, b) => weight(b) - weight(a) || (a < b ? -1 : 1)).slice(0, 10);
  // Agreement: of the other sources, the share that also use each top term.
  let agreement = 0;
  for (const t of top) agreement += ((sourcesWith.get(t)?.size ?? 1) - 1) / (sourceCount - 1);
  agreement /= Math.max(1, top.length);
  const corroboration = 1 - 1 / (1 + (sourceCount - 1) * 0.75);
  return Math.round(Math.min(0.95, 0.3 + 0.35 * corroboration + 0.35 * agreement) * 100) / 100;
}

/** One entry per distinct URL, earliest first, each source once before any twice. */
function mergeSources(items: readonly SignalItem[], max: number): Synthesis['sources'] {
  const at = (it: SignalItem) => it.publishedAt ?? it.fetchedAt;
  const sorted = [...items].sort((a, b) => at(a) - at(b) || a.id - b.id);
  const seen = new Set<string>();
  const firsts: Synthesis['sources'] = [];
  const rest: Synthesis['sources'] = [];
  const sourcesListed = new Set<string>();
  for (const it of sorted) {
    // The key ingest deduplicates by, so a page is one source here exactly when it was one item there.
    const key = normalizeUrl(it.url) ?? `${it.sourceId}\u0000${it.title.trim().toLowerCase()}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const entry = { source_id: it.sourceId, url: it.url, title: stripHtml(it.title) };
    if (sourcesListed.has(it.sourceId)) rest.push(entry);
    else {
      sourcesListed.add(it.sourceId);
      firsts.push(entry);
    }
  }
  return [...firsts, ...rest].slice(0, Math.max(0, max));
}

/**
 * The extractive summarizer as a `Summarizer` (the default).
 * @example
 * const r = await extractiveSummarizer().summarize({ clusterId, title, tags, items });
 * r.summarizer; // 'extractive'
 */
export function extractiveSummarizer(opts: ExtractiveOptions = {}): Summarizer {
  return {
    name: 'extractive',
    async summarize(input, options) {
      options?.signal?.throwIfAborted();
      return { synthesis: extractiveSummary(input.items, opts), summarizer: 'extractive' };
    },
  };
}

/** User options of `commandSummarizer`. */
export interface CommandSummarizerInit {
  /** Milliseconds before the program is killed and the extractive summary used. Default 60,000. */
  timeoutMs?: number;
  /** Largest stdout read, bytes. Default 256 KiB. */
  maxOutputBytes?: number;
  /** Items sent at most (the cluster's first ones). Default 20. */
  maxItems?: number;
  /** Characters of each item's text sent. Default 4000. */
  maxTextChars?: number;
  /** Extra environment for the program (it gets only PATH, HOME, LANG, LC_ALL, TZ, TMPDIR otherwise). */
  env?: NodeJS.ProcessEnv;
  /** Options of the extractive summary (the draft sent to the program, and the fallback). */
  extractive?: ExtractiveOptions;
}

export interface CommandSummarizerDeps {
  logger?: Logger;
}

/**
 * What the program reads on stdin: the cluster, its items (text capped), a draft made by the
 * extractive summarizer, and the shape of the answer.
 */
export interface CommandSummarizerRequest {
  cluster_id: string;
  title: string;
  tags: string[];
  items: Array<{ source_id: string; url: string; title: string; summary: string; text: string; published_at: string | null }>;
  draft: Synthesis;
  respond_with: string;
}

const RESPOND_WITH =
  'one JSON object on stdout: {"summary": "<1-3 sentences>", "key_points": ["<point>", ...3-5], "confidence": <0..1, optional>}; sources are taken from the items';

/** Characters of the summary and of each key point kept from a program's answer. */
const MAX_ANSWER_SUMMARY = 2000;
const MAX_ANSWER_POINT = 500;
const MAX_ANSWER_POINTS = 10;

/**
 * A summarizer that is any program: it gets a `CommandSummarizerRequest` as JSON on stdin and
 * answers `{"summary", "key_points", "confidence"?}` on stdout (the whole output, a fenced
 * ```json block in it, or its last non-empty line, so chatter around the answer is fine),
 * exit status 0. `command` is an argument vector, or a command line: one without shell syntax
 * (pipes, redirections, `$`, globs, `;`, `&`, backquotes) is split into words (quotes and
 * backslashes as a shell reads them) and run without a shell; one with it runs under `/bin/sh`.
 * The program runs in its own process group with a minimal environment, is killed after
 * `timeoutMs` or past `maxOutputBytes`, and any failure (cannot start, non-zero exit, timeout,
 * no or bad JSON) gives the extractive summary with `fallback` saying why, logged as a warning.
 * @example
 * const s = commandSummarizer('llm -m haiku --system "Summarise the items as JSON"', { timeoutMs: 30_000 }, { logger });
 * const r = await s.summarize({ clusterId, title, tags, items });
 * r.summarizer; // 'command:llm', or 'extractive' with r.fallback set
 */
export function commandSummarizer(command: string | readonly string[], init: CommandSummarizerInit = {}, deps: CommandSummarizerDeps = {}): Summarizer {
  const argv = typeof command === 'string' ? splitCommandLine(command) : [...command];
  if (argv !== undefined && argv.length === 0) throw new TypeError('commandSummarizer: the command is empty');
  const line = typeof command === 'string' ? command.trim() : command.join(' ');
  const program = basename(argv?.[0] ?? line.split(/\s+/)[0] ?? 'command');
  const name = `command:${program}`;
  const logger = deps.logger ?? silentLogger;
  const timeoutMs = init.timeoutMs ?? 60_000;
  const maxOut = init.maxOutputBytes ?? 256 * 1024;
  const maxItems = init.maxItems ?? 20;
  const maxText = init.maxTextChars ?? 4000;
  return {
    name,
    async summarize(input, options) {
      options?.signal?.throwIfAborted();
      const draft = extractiveSummary(input.items, init.extractive);
      const request: CommandSummarizerRequest = {
        cluster_id: input.clusterId,
        title: input.title,
        tags: [...input.tags],
        items: input.items.slice(0, maxItems).map((it) => ({
          source_id: it.sourceId,
          url: it.url,
          title: it.title,
          summary: it.summary,
          text: it.text.length > maxText ? it.text.slice(0, maxText) : it.text,
          published_at: it.publishedAt === null ? null : new Date(it.publishedAt).toISOString(),
        })),
        draft,
        respond_with: RESPOND_WITH,
      };
      try {
        const out = await runProgram({ command: argv ?? line, timeoutMs, maxOutputBytes: maxOut, env: { ...minimalEnv(), ...init.env }, stdin: `${JSON.stringify(request)}\n`, ...(options?.signal ? { signal: options.signal } : {}) });
        const answer = parseAnswer(out);
        return {
          synthesis: { summary: answer.summary, key_points: answer.key_points, sources: draft.sources, confidence: answer.confidence ?? draft.confidence },
          summarizer: name,
        };
      } catch (err) {
        if (options?.signal?.aborted) throw options.signal.reason ?? err;
        const why = (err as Error).message;
        logger.warn({ summarizer: name, cluster: input.clusterId, err: why }, 'summarizer command failed; the extractive summary stands in');
        return { synthesis: draft, summarizer: 'extractive', fallback: `${name} failed: ${why}` };
      }
    },
  };
}

interface Answer {
  summary: string;
  key_points: string[];
  confidence?: number;
}

/** The program's answer: the whole output, a fenced JSON block, the last non-empty line, or the outermost braces. */
function parseAnswer(stdout: string): Answer {
  const text = stdout.trim();
  const forms: string[] = [text];
  const fenced = /```(?:json)?\s*\n([\s\S]*?)```/i.exec(text);
  if (fenced?.[1]) forms.push(fenced[1].trim());
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
  if (lines.length > 0) forms.push(lines[lines.length - 1] as string);
  const open = text.indexOf('{');
  const close = text.lastIndexOf('}');
  if (open >= 0 && close > open) forms.push(text.slice(open, close + 1));
  const shown = text.length > 200 ? `${text.slice(0, 200)}...` : text || '(nothing)';
  let value: unknown;
  let parsed = false;
  for (const f of forms) {
    try {
      value = JSON.parse(f);
      parsed = true;
      break;
    } catch {
      // the next form
    }
  }
  if (!parsed) throw new Error(`printed no JSON answer (expected ${RESPOND_WITH}), got: ${shown}`);
  const v = value as { summary?: unknown; key_points?: unknown; confidence?: unknown } | null;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`answered something that is not a JSON object: ${shown}`);
  if (typeof v.summary !== 'string' || v.summary.trim().length === 0) throw new Error(`answered without a "summary" string: ${shown}`);
  if (!Array.isArray(v.key_points) || !v.key_points.every((p) => typeof p === 'string')) throw new Error(`answered without a "key_points" array of strings: ${shown}`);
  if (v.confidence !== undefined && (typeof v.confidence !== 'number' || !Number.isFinite(v.confidence))) throw new Error(`answered a "confidence" that is not a number: ${shown}`);
  const points = (v.key_points as string[])
    .map((p) => p.trim())
    .filter((p) => p.length > 0)
    .slice(0, MAX_ANSWER_POINTS)
    .map((p) => truncate(p, MAX_ANSWER_POINT));
  const answer: Answer = { summary: truncate(v.summary.trim(), MAX_ANSWER_SUMMARY), key_points: points };
  if (typeof v.confidence === 'number') answer.confidence = Math.min(1, Math.max(0, v.confidence));
  return answer;
}

/**
 * The `signal.synthesis.ready` payload of a summarized cluster.
 * @example
 * await emit({ event: 'signal.synthesis.ready', description: r.synthesis.summary.slice(0, 200), payload: synthesisPayload(input, r) });
 */
export function synthesisPayload(input: SummarizeInput, result: SummarizeResult): SynthesisPayload {
  return { cluster_id: input.clusterId, title: input.title, synthesis: result.synthesis, summarizer: result.summarizer, tags: [...input.tags] };
}

export { splitCommandLine } from '../util/index.js';
