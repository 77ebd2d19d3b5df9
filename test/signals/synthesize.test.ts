/**
 * Synthesis as a user relies on it: the built-in extractive summary needs nothing installed,
 * drops what several sources say alike, merges sources, and is more confident when sources
 * agree; a configured program (a real child process here) gets the cluster on stdin and its
 * JSON answer is used, and when it crashes, hangs, floods or answers garbage the extractive
 * summary stands in and says why. The program never sees the daemon's environment and cannot
 * add sources of its own.
 */
import assert from 'node:assert/strict';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { clusterItems } from '../../src/signals/cluster.js';
import {
  commandSummarizer,
  extractiveSummarizer,
  extractiveSummary,
  splitCommandLine,
  type SummarizeInput,
  synthesisPayload,
} from '../../src/signals/synthesize.js';
import { normalizeUrl } from '../../src/signals/ingest.js';
import { contentTerms, hamming, simhash64 } from '../../src/signals/text.js';
import type { SignalItem } from '../../src/signals/types.js';
import type { Logger } from '../../src/util/index.js';
import { tempDir } from '../helpers/tmp.js';
import { type CorpusItem, corpus, makeItem } from './corpus.js';

function story(group: string, seed = 7): CorpusItem[] {
  return corpus(seed).items.filter((it) => it.group === group);
}

function input(items: readonly SignalItem[]): SummarizeInput {
  const [c] = clusterItems(items);
  return { clusterId: c?.id ?? 'c', title: c?.title ?? '', tags: c?.tags ?? [], items };
}

const terms = (s: string) => new Set(contentTerms(s).map((t) => t.term));
function jaccard(a: Set<string>, b: Set<string>): number {
  let i = 0;
  for (const x of a) if (b.has(x)) i++;
  return i / (a.size + b.size - i);
}

test('the extractive summary picks what the story is about, with 3 to 5 distinct key points', () => {
  const items = story('storm-ingrid');
  const s = extractiveSummary(items);
  console.log(`# storm-ingrid (${items.length} items): ${s.summary} | ${s.key_points.join(' | ')} | confidence ${s.confidence}`);
  assert.match(s.summary, /ingrid|storm/i);
  assert.ok(s.summary.length <= 320);
  assert.ok(s.key_points.length >= 3 && s.key_points.length <= 5, `${s.key_points.length} key points`);
  const all = [s.summary, ...s.key_points];
  for (let i = 0; i < all.length; i++) {
    assert.ok(!/[<>]/.test(all[i] as string), 'no markup');
    for (let j = i + 1; j < all.length; j++) {
      const a = all[i] as string;
      const b = all[j] as string;
      assert.ok(jaccard(terms(a), terms(b)) < 0.5 && hamming(simhash64(a), simhash64(b)) > 3, `near-identical: "${a}" / "${b}"`);
    }
  }
  for (const p of s.key_points) assert.ok(p.length <= 200);
});

test('sources are merged: one entry per page (tracking parameters ignored), each source before any second entry', () => {
  const items = story('harbor-ransomware');
  const first = items[0] as CorpusItem;
  const dupe = makeItem({ id: 9001, sourceId: 'aggregator', title: first.title, text: first.text, tags: [], publishedAt: (first.publishedAt as number) + 1000, group: first.group });
  const withDupe: SignalItem[] = [...items, { ...dupe, url: `${first.url}?utm_source=rss#comments` }];
  const s = extractiveSummary(withDupe);
  const urls = s.sources.map((x) => normalizeUrl(x.url));
  assert.equal(new Set(urls).size, urls.length, 'no page twice');
  assert.ok(!s.sources.some((x) => x.source_id === 'aggregator'), 'the same page through an aggregator adds nothing');
  const distinctSources = new Set(items.map((it) => it.sourceId)).size;
  assert.equal(new Set(s.sources.slice(0, distinctSources).map((x) => x.source_id)).size, distinctSources, 'every source once before any twice');
  assert.ok(s.sources.length <= 20);
});

test('confidence rises with agreeing sources; one source is uncorroborated', () => {
  const items = story('ecb-rates');
  const many = extractiveSummary(items);
  const single = extractiveSummary(items.slice(0, 3).map((it) => ({ ...it, sourceId: 'one' })));
  assert.equal(single.confidence, 0.3);
  assert.ok(many.confidence > 0.6 && many.confidence <= 0.95, `many ${many.confidence}`);
  // Two sources that share nothing agree less than two telling the same story.
  const [a, b] = items as [CorpusItem, CorpusItem];
  const other = story('roman-villa')[0] as CorpusItem;
  const agree = extractiveSummary([a, { ...b, sourceId: `${a.sourceId}-x` }]);
  const disagree = extractiveSummary([a, { ...other, sourceId: `${a.sourceId}-x` }]);
  assert.ok(agree.confidence > disagree.confidence, `${agree.confidence} > ${disagree.confidence}`);
});

test('a cluster of titles alone still gets key points; nothing gives an empty synthesis', () => {
  const items = story('quantix').map((it) => ({ ...it, text: '', summary: it.title }));
  const s = extractiveSummary(items);
  assert.ok(s.summary.length > 0);
  assert.ok(s.key_points.length >= 3);
  assert.deepEqual(extractiveSummary([]), { summary: '', key_points: [], sources: [], confidence: 0 });
});

test('splitCommandLine reads words as a shell would and refuses shell syntax', () => {
  assert.deepEqual(splitCommandLine(`llm -s "be brief" 'a b' c\\ d`), ['llm', '-s', 'be brief', 'a b', 'c d']);
  assert.deepEqual(splitCommandLine('node "x \\"y\\"" '), ['node', 'x "y"']);
  for (const line of ['llm | jq .', 'a > out', 'a; b', 'a && b', 'echo $HOME', 'echo "$HOME"', 'ls *.json', 'A=1 llm', 'echo `id`', '~/bin/x', "unterminated 'quote"]) {
    assert.equal(splitCommandLine(line), undefined, line);
  }
  assert.deepEqual(splitCommandLine('x=1'), undefined);
  assert.deepEqual(splitCommandLine('a=b'), undefined);
  assert.deepEqual(splitCommandLine('prog --opt=1'), ['prog', '--opt=1']);
});

interface Rig {
  dir: string;
  script(name: string, body: string): string;
  logs: Array<{ obj: Record<string, unknown>; msg?: string }>;
  logger: Logger;
  cleanup(): void;
}

function rig(): Rig {
  const t = tempDir('weft-summarizer-');
  const logs: Rig['logs'] = [];
  const log = (obj: Record<string, unknown> | string, msg?: string) => {
    logs.push(typeof obj === 'string' ? { obj: {}, msg: obj } : { obj, ...(msg === undefined ? {} : { msg }) });
  };
  const logger: Logger = { trace: log, debug: log, info: log, warn: log, error: log, fatal: log, child: () => logger };
  return {
    dir: t.dir,
    logs,
    logger,
    cleanup: t.cleanup,
    script(name, body) {
      const p = join(t.dir, name);
      writeFileSync(p, body);
      chmodSync(p, 0o755);
      return p;
    },
  };
}

const READ_STDIN = `let raw = ''; process.stdin.setEncoding('utf8'); process.stdin.on('data', (d) => { raw += d; });`;

test('a configured program gets the cluster on stdin and its JSON answer is the synthesis; sources stay ours', async () => {
  const r = rig();
  try {
    process.env.WEFT_TEST_SECRET = 'do-not-leak';
    const script = r.script(
      'summarize.mjs',
      `${READ_STDIN}
process.stdin.on('end', () => {
  const req = JSON.parse(raw);
  console.log('thinking...');
  console.log(JSON.stringify({
    summary: 'Program says: ' + req.title,
    key_points: [req.items.length + ' items', 'draft: ' + req.draft.key_points.length + ' points', 'args: ' + JSON.stringify(process.argv.slice(2)), 'secret: ' + (process.env.WEFT_TEST_SECRET ?? 'none') + ', extra: ' + process.env.EXTRA],
    sources: [{ source_id: 'invented', url: 'https://evil.example', title: 'made up' }],
    confidence: 1.7,
  }));
});`,
    );
    const items = story('pinecrest-merger');
    const inp = input(items);
    const s = commandSummarizer([process.execPath, script, 'one arg', '$HOME'], { env: { EXTRA: 'given' } }, { logger: r.logger });
    assert.equal(s.name, 'command:node');
    const res = await s.summarize(inp);
    assert.equal(res.summarizer, 'command:node');
    assert.equal(res.fallback, undefined);
    assert.equal(res.synthesis.summary, `Program says: ${inp.title}`);
    assert.deepEqual(res.synthesis.key_points, [
      `${items.length} items`,
      `draft: ${extractiveSummary(items).key_points.length} points`,
      'args: ["one arg","$HOME"]',
      'secret: none, extra: given',
    ]);
    assert.equal(res.synthesis.confidence, 1, 'clamped to 0..1');
    assert.deepEqual(res.synthesis.sources, extractiveSummary(items).sources, 'sources come from the items, not the program');
    const p = synthesisPayload(inp, res);
    assert.equal(p.summarizer, 'command:node');
    assert.equal(p.cluster_id, inp.clusterId);
  } finally {
    delete process.env.WEFT_TEST_SECRET;
    r.cleanup();
  }
});

test('a command line without shell syntax runs without a shell; one with a pipe runs under sh; a fenced answer is read', async () => {
  const r = rig();
  try {
    const script = r.script(
      'fenced.mjs',
      `${READ_STDIN}
process.stdin.on('end', () => {
  process.stdout.write('Here is the synthesis:\\n\`\`\`json\\n' + JSON.stringify({ summary: 'Fenced: ' + process.argv.slice(2).join('|'), key_points: ['a', 'b', 'c'] }) + '\\n\`\`\`\\nDone.\\n');
});`,
    );
    const items = story('chip-exports');
    const direct = await commandSummarizer(`node ${JSON.stringify(script)} "two words" '$NOT_EXPANDED'`).summarize(input(items));
    assert.equal(direct.synthesis.summary, 'Fenced: two words|$NOT_EXPANDED');
    assert.equal(direct.synthesis.confidence, extractiveSummary(items).confidence, 'no confidence given: the extractive one');
    const piped = await commandSummarizer(`node ${JSON.stringify(script)} piped | cat`).summarize(input(items));
    assert.equal(piped.fallback, undefined, piped.fallback);
    assert.equal(piped.synthesis.summary, 'Fenced: piped');
    assert.equal(piped.summarizer, 'command:node');
  } finally {
    r.cleanup();
  }
});

test('when the program crashes, hangs, floods, answers garbage or is missing, the extractive summary stands in and says why', async () => {
  const r = rig();
  try {
    const items = story('sierra-fire');
    const extractive = extractiveSummary(items);
    const cases: Array<{ name: string; body?: string; command?: string[]; timeoutMs?: number; maxOutputBytes?: number; why: RegExp }> = [
      { name: 'crash', body: `${READ_STDIN} process.stdin.on('end', () => { console.error('boom: model not found'); process.exit(3); });`, why: /exited with status 3: boom: model not found/ },
      { name: 'hang', body: `${READ_STDIN} setInterval(() => {}, 1000);`, timeoutMs: 400, why: /gave no answer within 400 ms; it was killed/ },
      { name: 'flood', body: `const s = 'x'.repeat(65536); const w = () => { while (process.stdout.write(s)) {} process.stdout.once('drain', w); }; w();`, maxOutputBytes: 100_000, why: /printed more than 100000 bytes/ },
      { name: 'garbage', body: `${READ_STDIN} process.stdin.on('end', () => console.log('I think the story is about a fire.'));`, why: /printed no JSON answer/ },
      { name: 'no-points', body: `${READ_STDIN} process.stdin.on('end', () => console.log(JSON.stringify({ summary: 'ok' })));`, why: /without a "key_points" array/ },
      { name: 'array', body: `${READ_STDIN} process.stdin.on('end', () => console.log('[1, 2]'));`, why: /not a JSON object/ },
      { name: 'missing', command: [join(r.dir, 'no-such-program')], why: /could not start: .*ENOENT/ },
    ];
    for (const c of cases) {
      const command = c.command ?? [process.execPath, r.script(`${c.name}.mjs`, c.body as string)];
      const t0 = Date.now();
      const res = await commandSummarizer(command, { ...(c.timeoutMs ? { timeoutMs: c.timeoutMs } : {}), ...(c.maxOutputBytes ? { maxOutputBytes: c.maxOutputBytes } : {}) }, { logger: r.logger }).summarize(input(items));
      assert.equal(res.summarizer, 'extractive', c.name);
      assert.match(res.fallback ?? '', c.why, c.name);
      assert.deepEqual(res.synthesis, extractive, `${c.name}: the extractive summary`);
      if (c.name === 'hang') assert.ok(Date.now() - t0 < 5000, 'a hung program is not waited for');
    }
    assert.equal(r.logs.filter((l) => l.msg?.includes('extractive summary stands in')).length, cases.length, 'each fallback is logged');
  } finally {
    r.cleanup();
  }
});

test('an aborted summarize rejects instead of falling back, and kills the program', async () => {
  const r = rig();
  try {
    const script = r.script('slow.mjs', `${READ_STDIN} setInterval(() => {}, 1000);`);
    const ac = new AbortController();
    const p = commandSummarizer([process.execPath, script], { timeoutMs: 30_000 }).summarize(input(story('marsh-tennis')), { signal: ac.signal });
    setTimeout(() => ac.abort(new Error('stopping')), 100);
    await assert.rejects(p, /stopping/);
    await assert.rejects(extractiveSummarizer().summarize(input([]), { signal: AbortSignal.abort() }));
  } finally {
    r.cleanup();
  }
});

test('the extractive summarizer is a Summarizer', async () => {
  const res = await extractiveSummarizer().summarize(input(story('roman-villa')));
  assert.equal(res.summarizer, 'extractive');
  assert.match(res.synthesis.summary, /villa|roman|archaeolog/i);
  assert.throws(() => commandSummarizer(''), /empty/);
});
