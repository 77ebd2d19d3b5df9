/**
 * The text tools ingest and clustering rely on: words out of any script, sentences that do not
 * break at "U.S." or "3.5", a one-line summary free of HTML and feed chrome, a content hash
 * that ignores what copies differ by, and a SimHash whose value never changes (it is stored).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  contentHash,
  contentTerms,
  EMPTY_SIMHASH,
  hamming,
  isBoilerplate,
  keywords,
  oneLineSummary,
  popcount32,
  STOPWORDS,
  sentences,
  simhash64,
  stem,
  stripHtml,
  tokenize,
  truncate,
} from '../../src/signals/text.js';

test('tokenize keeps words of any script in lowercase, short numbers, and drops ids', () => {
  assert.deepEqual(tokenize("Acme's CEO said U.S. sales rose 3.5% in 2024 (order #123456789)"), [
    'acme',
    'ceo',
    'said',
    'u',
    's',
    'sales',
    'rose',
    '3.5',
    'in',
    '2024',
    'order',
  ]);
  assert.deepEqual(tokenize('Zürich café: Ελλάδα and Москва'), ['zürich', 'café', 'ελλάδα', 'and', 'москва']);
  assert.deepEqual(tokenize('1,000 users of node.js'), ['1000', 'users', 'of', 'node', 'js']);
  assert.deepEqual(tokenize('東京都'), ['東京', '京都'], 'scripts without spaces give character pairs');
  assert.deepEqual(tokenize(''), []);
});

test('stopwords cover English and the commonest words of other languages', () => {
  for (const w of ['the', 'and', "don't", 'der', 'und', 'les', 'para', 'het', 'della']) assert.ok(STOPWORDS.has(w), w);
  for (const w of ['kestrel', 'storm', 'recall']) assert.ok(!STOPWORDS.has(w), w);
  assert.deepEqual(
    contentTerms('Die Releases of the Kestrel databases').map((t) => t.term),
    ['release', 'kestrel', 'database'],
  );
});

test('stem folds plurals and leaves words that only look plural', () => {
  assert.equal(stem('companies'), 'company');
  assert.equal(stem('releases'), 'release');
  assert.equal(stem('flaws'), 'flaw');
  for (const w of ['analysis', 'politics', 'news', 'series', 'class', 'campus', 'gas']) assert.equal(stem(w), w);
});

test('keywords rank by frequency, damp common news words, never return numbers', () => {
  assert.deepEqual(keywords('Kestrel 4.0 ships faster queries. Kestrel queries now use the new planner.', 3), ['kestrel', 'queries', 'ships']);
  // "said" is said three times but is a common word: one mention of a rare word ties it no longer.
  const k = keywords('Officials said the levee broke. They said it twice and said nothing more. Levee crews arrived.', 2);
  assert.deepEqual(k, ['levee', 'said']);
  assert.ok(!keywords('In 2024, 2024 and 2024 again', 5).includes('2024'));
  // With document frequencies, a word every document has sinks under a rare one.
  const df = (t: string) => (t === 'storm' ? 900 : 3);
  assert.deepEqual(keywords('storm storm ingrid', 1, { df, docs: 1000 }), ['ingrid']);
  assert.deepEqual(keywords('', 5), []);
});

test('sentences split at sentence ends, not at abbreviations, initials, acronyms or decimals', () => {
  assert.deepEqual(sentences('The U.S. economy grew 2.5% in Q1, e.g. in retail. Dr. Lee disagreed! Why?'), [
    'The U.S. economy grew 2.5% in Q1, e.g. in retail.',
    'Dr. Lee disagreed!',
    'Why?',
  ]);
  assert.deepEqual(sentences('J. R. Smith met Mr. Jones at 10 a.m. on Jan. 5 vs. last year. It rained.'), [
    'J. R. Smith met Mr. Jones at 10 a.m. on Jan. 5 vs. last year.',
    'It rained.',
  ]);
  assert.deepEqual(sentences('Shares of Acme Inc. The company said so.'), ['Shares of Acme Inc.', 'The company said so.']);
  assert.deepEqual(sentences('He said "Stop." Then he left... Later, nothing.'), ['He said "Stop."', 'Then he left...', 'Later, nothing.']);
  assert.deepEqual(sentences('A heading\nA paragraph that\nwraps onto a second line.\n\nNew paragraph'), [
    'A heading',
    'A paragraph that wraps onto a second line.',
    'New paragraph',
  ]);
  assert.deepEqual(sentences('  '), []);
});

test('stripHtml removes markup, scripts and comments and decodes entities', () => {
  assert.equal(stripHtml('<p>Fast &amp; small</p><p>Second</p>'), 'Fast & small\nSecond');
  assert.equal(stripHtml('a<script>alert(1)</script>b<!-- c --><style>p{}</style> &#8217;&#x2014;&hellip;&bogus;'), 'ab ’—…&bogus;');
  assert.equal(stripHtml('plain text, no markup'), 'plain text, no markup');
});

test('oneLineSummary is the first meaningful sentence, HTML-free, cut with an ellipsis past max', () => {
  assert.equal(oneLineSummary('Kestrel 4.0', '<p>Kestrel 4.0</p><p>Read more</p><p>The database ships a <b>new</b> planner. More soon.</p>'), 'The database ships a new planner.');
  assert.equal(oneLineSummary('Title only', ''), 'Title only');
  assert.equal(oneLineSummary('<i>Title</i>  with\nbreaks', 'Too short. Also.'), 'Title with breaks');
  assert.equal(oneLineSummary('T', 'The post Storm hits appeared first on Weather Blog. Storm Ingrid floods the north coast.'), 'Storm Ingrid floods the north coast.');
  const long = oneLineSummary('T', `${'word '.repeat(100)}end.`, 50);
  assert.ok(long.length <= 50 && long.endsWith('…') && !long.includes('  '), long);
  assert.ok(isBoilerplate('Continue reading →'));
  fc.assert(
    fc.property(fc.string(), fc.string({ maxLength: 600 }), fc.integer({ min: 1, max: 300 }), (title, text, max) => {
      const s = oneLineSummary(title, text, max);
      return s.length <= max && !s.includes('\n');
    }),
  );
});

test('truncate cuts at a word in the second half and never past max', () => {
  assert.equal(truncate('one two three four', 12), 'one two…');
  assert.equal(truncate('short', 12), 'short');
  assert.equal(truncate('abcdefghijklmnop', 8), 'abcdefg…');
  fc.assert(fc.property(fc.string(), fc.integer({ min: 0, max: 100 }), (s, max) => truncate(s, max).length <= Math.max(max, 0)));
});

test('contentHash is equal for copies that differ in case, whitespace, punctuation and markup', () => {
  assert.equal(contentHash('Hello, World', '<b>It works.</b>'), contentHash('hello world', 'It  works'));
  assert.notEqual(contentHash('Hello', 'It works'), contentHash('Hello', 'It worked'));
  assert.notEqual(contentHash('ab', 'c'), contentHash('a', 'bc'), 'title and text stay apart');
  assert.match(contentHash('x', 'y'), /^[0-9a-f]{32}$/);
});

test('simhash64 never changes for a text (values are stored) and measures edits in bits', () => {
  // Pinned: a change here would make every stored SimHash incomparable with new ones.
  assert.equal(simhash64('Storm Ingrid floods the north coast'), 'd2d150a33ddfe141');
  assert.equal(simhash64(''), EMPTY_SIMHASH);
  assert.equal(hamming(simhash64('Storm Ingrid floods the north coast'), simhash64('STORM INGRID floods the north coast!')), 0);
  const long =
    'Dockworkers at Port Halden began a 72-hour strike over pay on Monday, leaving hundreds of containers stranded. The union demands a 12 percent wage increase and rejected the latest offer from port operators. Retailers warned that supply chains could be disrupted for weeks if the dispute drags on into the summer.';
  const edited = long.replace('Monday', 'Tuesday');
  assert.ok(hamming(simhash64(long), simhash64(edited)) <= 8, 'a one-word edit in a long text moves few bits');
  const other = 'Marlow Pharma reported positive late-stage trial results for its Alzheimer drug, which slowed cognitive decline by 27 percent.';
  assert.ok(hamming(simhash64(long), simhash64(other)) >= 16, 'unrelated texts are far apart');
  fc.assert(
    fc.property(fc.string(), fc.string(), (a, b) => {
      const x = simhash64(a);
      const y = simhash64(b);
      return /^[0-9a-f]{16}$/.test(x) && hamming(x, x) === 0 && hamming(x, y) === hamming(y, x);
    }),
  );
});

test('hamming counts differing bits and refuses what is not a SimHash', () => {
  assert.equal(hamming('00000000000000ff', '000000000000000f'), 4);
  assert.equal(hamming('ffffffffffffffff', '0000000000000000'), 64);
  assert.equal(popcount32(0xffffffff), 32);
  assert.throws(() => hamming('xyz', '0000000000000000'), /not a 64-bit SimHash/);
});
