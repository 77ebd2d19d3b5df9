/**
 * What a script sees when it gets an argument wrong, with and without --json: one line that
 * names the option and the values it takes, exit code 2, checked before any request (no daemon
 * runs here, so a request would fail with a complaint about the daemon instead).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { weft } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

function envIn(dir: string): NodeJS.ProcessEnv {
  return { HOME: dir, WEFT_DATA_DIR: `${dir}/data`, WEFT_LOG_LEVEL: 'warn', WEFT_URL: '', WEFT_TOKEN: '' };
}

test('a --limit, --cursor or id out of the range the API takes is a usage error naming the range, before any request', () => {
  const t = tempDir('weft-usage-');
  try {
    const env = envIn(t.dir);
    for (const [args, said] of [
      [['events', 'list', '--limit', '0'], /--limit must be a whole number from 1 to 1000, got '0'/],
      [['events', 'list', '--limit', '5000'], /--limit must be a whole number from 1 to 1000, got '5000'/],
      [
        ['notifications', 'list', '--limit', '99999999999999999999'],
        /--limit must be a whole number from 1 to 1000/,
      ],
      [['rejections', 'list', '--cursor', '0'], /--cursor must be a whole number from 1 up, got '0'/],
      [['sessions', 'tree', '--depth', '300'], /--depth must be a whole number from 0 to 256/],
      [['notifications', 'show', '0'], /id must be a whole number from 1 up, got '0'/],
      [
        ['emit', 'system.worker.crashed', '--level', '9'],
        /--level must be a whole number from 0 to 3, got '9'/,
      ],
      [['events', 'list', '--limit', 'ten'], /--limit must be a whole number from 1 to 1000, got 'ten'/],
      [['invoke', 'saturn', 'node.health', '--deadline', '48h'], /--deadline: at most 24h, got '48h'/],
    ] as const) {
      const r = weft([...args], env);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, said, args.join(' '));
      assert.doesNotMatch(r.stderr, /querystring|daemon/, `${args.join(' ')}: refused before any request`);
      assert.equal(r.stdout, '');
    }
  } finally {
    t.cleanup();
  }
});

test('with --json every error is one JSON line on stderr shaped { error: { code, message } }, and stdout stays empty', () => {
  const t = tempDir('weft-usage-json-');
  try {
    const env = envIn(t.dir);
    for (const [args, code, exit, said] of [
      [['--json', 'events', 'list', '--bogus'], 'WEFT_VALIDATION', 2, /unknown option '--bogus'/],
      [
        ['events', 'list', '--limit', '0', '--json'],
        'WEFT_VALIDATION',
        2,
        /--limit must be a whole number from 1 to 1000/,
      ],
      [
        ['--json', 'notifications', 'list', '--human', 'maybe'],
        'WEFT_VALIDATION',
        2,
        /'maybe' is invalid\. Allowed choices are unseen, seen/,
      ],
      [['--json', 'no-such-command'], 'WEFT_VALIDATION', 2, /unknown command 'no-such-command'/],
      // Enumerations are checked by the CLI: the API's querystring wording never reaches the user.
      [
        ['--json', 'quarantine', 'list', '--status', 'waiting'],
        'WEFT_VALIDATION',
        2,
        /'waiting' is invalid\. Allowed choices are held, released, dropped, all/,
      ],
      [
        ['--json', 'mounts', 'list', '--mode', 'pull'],
        'WEFT_VALIDATION',
        2,
        /'pull' is invalid\. Allowed choices are link, mirror, invoke/,
      ],
      [['--json', 'events'], 'WEFT_VALIDATION', 2, /a subcommand is missing/],
      [['--json', 'events', 'list'], 'WEFT_STOPPED', 1, /start one with 'weft daemon'/],
      // Commands that print only text refuse --json rather than print text where JSON is expected.
      [['--json', 'demo'], 'WEFT_VALIDATION', 2, /weft demo has no JSON output/],
      [['daemon', '--json'], 'WEFT_VALIDATION', 2, /weft daemon has no JSON output/],
    ] as const) {
      const r = weft([...args], env);
      assert.equal(r.code, exit, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stdout, '', `${args.join(' ')}: nothing on stdout`);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, `${args.join(' ')}: one line on stderr, got ${r.stderr}`);
      const e = (JSON.parse(lines[0] as string) as { error: { code: string; message: string } }).error;
      assert.equal(e.code, code, args.join(' '));
      assert.match(e.message, said, args.join(' '));
    }
    // Without --json the same mistake is commander's line and the command's help, as before.
    const plain = weft(['events', 'list', '--bogus'], env);
    assert.equal(plain.code, 2);
    assert.match(plain.stderr, /^error: unknown option '--bogus'\n\nUsage: weft events list/);
  } finally {
    t.cleanup();
  }
});

test('an empty value on the command line is a usage error, not a filter that lists everything', () => {
  const t = tempDir('weft-usage-empty-');
  try {
    const env = envIn(t.dir);
    for (const [args, said] of [
      [
        ['notifications', 'list', '--type', ''],
        /^weft: --type is empty: give it a value, or leave it out\n$/,
      ],
      [['events', 'list', '--type', '  '], /^weft: --type is empty/],
      [['emit', ''], /^weft: <type> is empty: give it a value\n$/],
      [['notifications', 'claim', '3', '--agent', ''], /^weft: --agent is empty/],
    ] as const) {
      const r = weft([...args], env);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, said, args.join(' '));
    }
  } finally {
    t.cleanup();
  }
});

test('a WEFT_URL that is no http address is named as such, not reported as a daemon that does not answer', () => {
  const t = tempDir('weft-usage-url-');
  try {
    const r = weft(['events', 'list'], { ...envIn(t.dir), WEFT_URL: '127.0.0.1:9237', WEFT_TOKEN: 'x' });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^weft: WEFT_URL is '127\.0\.0\.1:9237', not an http:\/\/ or https:\/\/ address/);
  } finally {
    t.cleanup();
  }
});

test('WEFT_API_TOKEN and WEFT_API_URL, guessed from the WEFT_API_* variables, are named as ignored, with the names Weft reads', () => {
  const t = tempDir('weft-usage-env-');
  try {
    const r = weft(['events', 'list'], {
      ...envIn(t.dir),
      WEFT_API_TOKEN: 'abc',
      WEFT_API_URL: 'http://127.0.0.1:9',
    });
    assert.match(
      r.stderr,
      /weft: warning: WEFT_API_TOKEN is set, but Weft reads no such variable \(did you mean WEFT_TOKEN\?\); it is ignored/,
    );
    assert.match(
      r.stderr,
      /weft: warning: WEFT_API_URL is set, but Weft reads no such variable \(did you mean WEFT_URL\?\); it is ignored/,
    );
  } finally {
    t.cleanup();
  }
});
