/**
 * `weft config show` and `weft daemon` judge a config alike: every config the daemon refuses,
 * `config show` refuses with the same one line and exit 2, and the daemon refuses it before it
 * opens anything (no data dir is made).
 */
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { weft } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

interface Case {
  toml: string;
  env?: NodeJS.ProcessEnv;
  line: RegExp;
}

const CASES: Case[] = [
  {
    toml: 'mesh.peers = ["garbage"]',
    line: /^weft: config key mesh\.peers: "garbage" is not allowed; expected "computer/,
  },
  {
    toml: 'mesh.caps_required = ["zstd"]',
    line: /^weft: config key mesh\.caps_required: "zstd" is not allowed; expected crc32c, deflate or aead$/,
  },
  {
    toml: 'federation.edges = ["a b"]',
    line: /^weft: config key federation\.edges: "a b" is not allowed; expected "from->to"$/,
  },
  {
    toml: 'privacy.subnet_trust = { notasubnet = "peer" }',
    line: /^weft: config key privacy\.subnet_trust: 'notasubnet' is not a CIDR/,
  },
  {
    toml: 'observe.exclude = ["(unclosed"]',
    line: /^weft: config key observe\.exclude: '\(unclosed' is not a regular expression/,
  },
  {
    toml: 'observe.rules = [{ name = "x" }]',
    line: /^weft: config key observe\.rules: rule 'x': pattern must be a non-empty regular expression$/,
  },
  {
    toml: 'signals.sources = [{ type = "bogus" }]',
    line: /^weft: config key signals\.sources\[0\]\.type: 'bogus' is not one of rss, atom/,
  },
  {
    toml: 'telegram.base_url = "notaurl"\ntelegram.bot_token = "123:abc"\ntelegram.chat_id = "42"',
    line: /^weft: config key telegram\.base_url: "notaurl" is not allowed; expected an http\(s\) URL$/,
  },
  {
    toml: 'webhook.url = "ftp://x"',
    line: /^weft: config key webhook\.url: "ftp:\/\/x" is not allowed; expected an http\(s\) URL$/,
  },
  {
    toml: 'mesh.enable_mdns = true',
    line: /^weft: config key mesh\.enable_mdns: mDNS announces the TLS listener and needs mesh\.provider = "tls"/,
  },
  {
    toml: 'computer.name = "box.lock"\nfallback.git_remote = "/nowhere"',
    line: /^weft: config key computer\.name: "box\.lock" cannot be a git ref/,
  },
  {
    toml: '',
    env: { WEFT_MESH_PEERS: 'garbage' },
    line: /^weft: config key mesh\.peers \(WEFT_MESH_PEERS\): "garbage" is not allowed; expected "computer/,
  },
];

test('a config the daemon refuses: config show and daemon both exit 2 with the same one line, and the daemon opens nothing', () => {
  const t = tempDir('weft-config-check-');
  try {
    for (const [i, c] of CASES.entries()) {
      const file = join(t.dir, `config-${i}.toml`);
      const dataDir = join(t.dir, `data-${i}`);
      writeFileSync(file, `data_dir = ${JSON.stringify(dataDir)}\napi.port = 0\n${c.toml}\n`);
      const env = { HOME: t.dir, WEFT_CONFIG: file, WEFT_MESH_PROVIDER: '', ...c.env };
      const show = weft(['config', 'show'], env);
      assert.equal(show.code, 2, `config show of ${c.toml || JSON.stringify(c.env)}: ${show.stderr}`);
      assert.match(show.stderr.trim(), c.line);
      assert.equal(show.stderr.trim().split('\n').length, 1, 'one line');
      const daemon = weft(['daemon'], env);
      assert.equal(daemon.code, 2, `daemon with ${c.toml || JSON.stringify(c.env)}: ${daemon.stderr}`);
      assert.equal(daemon.stderr, show.stderr, 'the same line from both');
      assert.equal(
        existsSync(dataDir),
        false,
        `the daemon refused ${c.toml || JSON.stringify(c.env)} before making its data dir`,
      );
    }
  } finally {
    t.cleanup();
  }
});

test('a config the daemon accepts passes config show (exit 0)', () => {
  const t = tempDir('weft-config-check-');
  try {
    const file = join(t.dir, 'config.toml');
    writeFileSync(
      file,
      [
        `data_dir = ${JSON.stringify(join(t.dir, 'data'))}`,
        'api.port = 0',
        'mesh.caps_required = ["crc32c"]',
        'federation.edges = ["lab->prod"]',
        'privacy.subnet_trust = { "10.0.1.0/24" = "peer" }',
        'observe.exclude = ["^ls"]',
        'signals.sources = [{ type = "rss", url = "https://example.org/feed.xml" }]',
        'webhook.url = "https://ntfy.sh/weft-test"',
      ].join('\n'),
    );
    const r = weft(['config', 'show'], { HOME: t.dir, WEFT_CONFIG: file, WEFT_MESH_PROVIDER: '' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
  } finally {
    t.cleanup();
  }
});
