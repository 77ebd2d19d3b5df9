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
  /** A secret the line must not show (it is masked as config show masks it). */
  secret?: string;
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
  // A source table's misspelt key gets a suggestion (it was dropped: tags never given).
  {
    toml: '[[signals.sources]]\ntype = "rss"\nurl = "https://example.org/a.xml"\ntgas = ["db"]',
    line: /^weft: config key signals\.sources\[0\]: unknown key tgas \(did you mean tags\?\)$/,
  },
  {
    toml: '[[signals.sources]]\ntype = "rss"\nurl = "https://example.org/a.xml"\nlable = "a"',
    line: /^weft: config key signals\.sources\[0\]: unknown key lable \(did you mean label\?\)$/,
  },
  {
    toml: '[[signals.sources]]\ntype = "rss"\nurl = "https://example.org/a.xml"\npath = "feeds.opml"',
    line: /^weft: config key signals\.sources\[0\]\.path: a rss source takes url \(path is for opml and csv lists\), not path$/,
  },
  // The same feed twice was merged without a word; one label twice gave both a hashed id.
  {
    toml: '[[signals.sources]]\nurl = "https://example.org/a.xml"\n[[signals.sources]]\nurl = "https://EXAMPLE.org/a.xml#top"\ntags = ["x"]',
    line: /^weft: config key signals\.sources\[1\]\.url: https:\/\/example\.org\/a\.xml is already signals\.sources\[0\] \(the same feed listed twice\); keep one entry/,
  },
  {
    toml: '[[signals.sources]]\nurl = "https://example.org/a.xml"\nlabel = "a"\n[[signals.sources]]\nurl = "https://example.org/b.xml"\nlabel = "A"',
    line: /^weft: config key signals\.sources\[1\]\.label: 'A' names signals\.sources\[0\] already; a label is the source's id \(weft signals poll a\), give each source its own$/,
  },
  // Blank, the daemon stopped at its summariser naming no key.
  {
    toml: 'signals.summarizer_command = "   "\n[[signals.sources]]\nurl = "https://example.org/a.xml"',
    line: /^weft: config key signals\.summarizer_command: " {3}" is no command/,
  },
  {
    toml: 'telegram.base_url = "notaurl"\ntelegram.bot_token = "123:abc"\ntelegram.chat_id = "42"',
    line: /^weft: config key telegram\.base_url: "notaurl" is not allowed; expected an http\(s\) URL$/,
  },
  {
    toml: 'webhook.url = "ftp://ntfy.example/private-topic-4711"',
    line: /^weft: config key webhook\.url: "ft\*\*\*11" is not allowed; expected an http\(s\) URL$/,
    secret: 'private-topic',
  },
  {
    toml: 'redis.url = "http://user:hunter2@10.0.0.5:6379"',
    line: /^weft: config key redis\.url: "http:\/\/user:\*\*\*@10\.0\.0\.5:6379" is not allowed; expected a redis:\/\/ or rediss:\/\/ URL$/,
    secret: 'hunter2',
  },
  // A seed list written as redis-cli takes it: shown as typed (it was "12***02"), with what to write.
  {
    toml: 'redis.url = "127.0.0.1:7001,127.0.0.1:7002"\nredis.cluster = true',
    line: /^weft: config key redis\.url: "127\.0\.0\.1:7001,127\.0\.0\.1:7002" is not allowed; expected a redis:\/\/ or rediss:\/\/ URL: write "redis:\/\/127\.0\.0\.1:7001,redis:\/\/127\.0\.0\.1:7002"$/,
  },
  {
    toml: 'redis.url = ":hunter2@10.0.0.5:6379"',
    line: /^weft: config key redis\.url: "\*\*\*@10\.0\.0\.5:6379" is not allowed; expected a redis:\/\/ or rediss:\/\/ URL$/,
    secret: 'hunter2',
  },
  // The nats client ignores a URL's scheme: wss:// spoke plain NATS to that port.
  {
    toml: 'mesh.provider = "nats"\nnats.url = "wss://10.0.0.5:443"',
    line: /^weft: config key nats\.url: "ws\*\*\*43" is not allowed; expected nats:\/\/host:port, or tls:\/\/host:port to require TLS/,
  },
  // It has one set of credentials for all servers.
  {
    toml: 'mesh.provider = "nats"\nnats.url = "nats://u:pw-one@10.0.0.5:4222,nats://u:pw-two@10.0.0.6:4222"',
    line: /^weft: config key nats\.url: "nats:\/\/u:\*\*\*@10\.0\.0\.5:4222,nats:\/\/u:\*\*\*@10\.0\.0\.6:4222" carries different credentials for different servers/,
    secret: 'pw-',
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
    toml: 'mesh.provider = "tls"\nmesh.tls_host = "not a host"',
    line: /^weft: config key mesh\.tls_host: "not a host" is not allowed; expected an IP address or a host name of this computer/,
  },
  {
    toml: '',
    env: { WEFT_API_HOST: 'a b' },
    line: /^weft: config key api\.host \(WEFT_API_HOST\): "a b" is not allowed; expected an IP address or a host name/,
  },
  {
    toml: 'mesh.provider = "tls"',
    env: { WEFT_API_PORT: '19238', WEFT_MESH_TLS_PORT: '19238' },
    line: /^weft: config key mesh\.tls_port \(WEFT_MESH_TLS_PORT\): api\.port and mesh\.tls_port are both 19238 \(on 127\.0\.0\.1 and 127\.0\.0\.1\); give them different ports/,
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
      if (c.secret) assert.ok(!show.stderr.includes(c.secret), `the secret is not printed: ${show.stderr}`);
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

test('an address the daemon cannot listen on stops it with one line naming the key (exit 2)', () => {
  const t = tempDir('weft-config-check-');
  try {
    const cases: Array<[NodeJS.ProcessEnv, RegExp]> = [
      [
        { WEFT_API_HOST: 'example.invalid' },
        /^weft: config key api\.host \(WEFT_API_HOST\): "example\.invalid" cannot be looked up \(getaddrinfo (ENOTFOUND|EAI_AGAIN)\); set api\.host to an address of this computer: 127\.0\.0\.1 \(this computer only\) or 0\.0\.0\.0 \(every interface\)$/,
      ],
      // 192.0.2.0/24 is for documentation: never an address of this computer.
      [
        { WEFT_API_HOST: '192.0.2.1' },
        /^weft: config key api\.host \(WEFT_API_HOST\): "192\.0\.2\.1" is not an address of this computer \(listen EADDRNOTAVAIL\); set api\.host to /,
      ],
      [
        { WEFT_MESH_PROVIDER: 'tls', WEFT_MESH_TLS_PORT: '0', WEFT_MESH_TLS_HOST: '192.0.2.1' },
        /^weft: config key mesh\.tls_host \(WEFT_MESH_TLS_HOST\): "192\.0\.2\.1" is not an address of this computer \(listen EADDRNOTAVAIL\); set mesh\.tls_host to /,
      ],
      [
        { WEFT_MESH_PROVIDER: 'tls', WEFT_MESH_TLS_PORT: '0', WEFT_MESH_TLS_HOST: 'example.invalid' },
        /^weft: config key mesh\.tls_host \(WEFT_MESH_TLS_HOST\): "example\.invalid" cannot be looked up/,
      ],
    ];
    for (const [i, [env, line]] of cases.entries()) {
      const r = weft(['daemon'], {
        HOME: t.dir,
        WEFT_CONFIG: '',
        WEFT_DATA_DIR: join(t.dir, `data-${i}`),
        WEFT_API_PORT: '0',
        WEFT_MESH_PROVIDER: '',
        ...env,
      });
      assert.equal(r.code, 2, `${JSON.stringify(env)}: ${r.stderr}`);
      assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
      assert.match(r.stderr.trim(), line);
    }
  } finally {
    t.cleanup();
  }
});
