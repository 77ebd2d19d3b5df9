/**
 * What `weft config show` says about a config file a user got wrong: one line, exit 2, naming
 * the key or the place in the file (real files, the real CLI).
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { weft } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

/** `weft config show` over a config file with `toml` in it, after a data_dir line. */
function show(
  dir: string,
  toml: string,
  env: NodeJS.ProcessEnv = {},
): { code: number | null; stdout: string; stderr: string } {
  const file = join(dir, 'config.toml');
  writeFileSync(file, `data_dir = ${JSON.stringify(join(dir, 'data'))}\n${toml}\n`);
  return weft(['config', 'show'], { HOME: dir, WEFT_CONFIG: file, WEFT_MESH_PROVIDER: '', ...env });
}

function refused(r: { code: number | null; stderr: string }, line: RegExp): void {
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
  assert.match(r.stderr.trim(), line);
}

test('a table header 5,000 levels deep is refused as an unknown key, not a stack overflow', () => {
  const t = tempDir('weft-config-file-');
  try {
    const deep = `[${Array.from({ length: 5000 }, () => 'a').join('.')}]\nx = 1`;
    refused(
      show(t.dir, deep),
      /^weft: config file .*config\.toml: unknown key a\.a; the top-level keys and sections are computer, data_dir,/,
    );
    const underKey = `[mesh.provider${'.a'.repeat(5000)}]\nx = 1`;
    refused(
      show(t.dir, underKey),
      /^weft: config key mesh\.provider: nested more than 16 levels deep; expected one of none, tls/,
    );
    const inValue = `signals.sources = [{ ${'a.'.repeat(5000)}a = 1 }]`;
    refused(show(t.dir, inValue), /^weft: config key signals\.sources: nested more than 16 levels deep/);
  } finally {
    t.cleanup();
  }
});

test('an empty unknown table or an unknown key holding a date is refused like any unknown key', () => {
  const t = tempDir('weft-config-file-');
  try {
    refused(show(t.dir, '[mesh.provder]'), /unknown key mesh\.provder \(did you mean mesh\.provider\?\)$/);
    refused(show(t.dir, '[foo]'), /unknown key foo; the top-level keys and sections are /);
    refused(show(t.dir, 'foo = 1979-05-27'), /unknown key foo; the top-level keys and sections are /);
    refused(
      show(t.dir, '[mesh]\nfoo = 1979-05-27T07:32:00Z'),
      /unknown key mesh\.foo; \[mesh\] has provider, tls_host, /,
    );
    // An empty known section is harmless.
    assert.equal(show(t.dir, '[mesh]').code, 0);
  } finally {
    t.cleanup();
  }
});

test('an empty WEFT_CONFIG is unset: ~/.weft/config.toml is read', () => {
  const t = tempDir('weft-config-file-');
  try {
    mkdirSync(join(t.dir, '.weft'));
    const file = join(t.dir, '.weft', 'config.toml');
    writeFileSync(file, `data_dir = ${JSON.stringify(join(t.dir, 'data'))}\napi.port = 9411\n`);
    const r = weft(['config', 'show'], { HOME: t.dir, WEFT_CONFIG: '', WEFT_API_PORT: '' });
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      new RegExp(`^# from ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} and the environment$`, 'm'),
    );
    assert.match(r.stdout, /^api\.port = 9411$/m);
  } finally {
    t.cleanup();
  }
});

test('a TOML syntax error names the line and column', () => {
  const t = tempDir('weft-config-file-');
  try {
    // The data_dir line is line 1: "b = 2 3" is line 3, and the stray 3 is at column 7.
    refused(
      show(t.dir, 'a.b = 1\nb = 2 3'),
      /^weft: config file .*config\.toml line 3, column 7: each key-value declaration must be followed by an end-of-line$/,
    );
  } finally {
    t.cleanup();
  }
});

test('an unknown key names the close key, or lists only its section, in a short line', () => {
  const t = tempDir('weft-config-file-');
  try {
    const typo = show(t.dir, '[mesh]\nprovder = "tls"');
    refused(
      typo,
      /^weft: config file .*config\.toml: unknown key mesh\.provder \(did you mean mesh\.provider\?\)$/,
    );
    refused(
      show(t.dir, '[mehs]\nprovider = "tls"'),
      /unknown key mehs\.provider \(did you mean mesh\.provider\?\)$/,
    );
    refused(show(t.dir, 'datadir = "x"'), /unknown key datadir \(did you mean data_dir\?\)$/);
    const far = show(t.dir, '[api]\nlisten = "0.0.0.0"');
    refused(far, /unknown key api\.listen; \[api\] has host, port, max_connections, dashboard$/);
    refused(show(t.dir, 'api = 1'), /: api is a table of keys \(\[api\]\), not a value$/);
    for (const r of [typo, far]) assert.ok(r.stderr.length < 300, `short: ${r.stderr.length} chars`);
  } finally {
    t.cleanup();
  }
});

test('a wrong value is described as the user wrote it, and a value from the environment names its variable', () => {
  const t = tempDir('weft-config-file-');
  try {
    refused(
      show(t.dir, 'api.port = inf'),
      /^weft: config key api\.port: inf is not allowed; expected an integer 0\.\.65535$/,
    );
    refused(
      show(t.dir, 'api.port = nan'),
      /^weft: config key api\.port: nan is not allowed; expected an integer 0\.\.65535$/,
    );
    refused(
      show(t.dir, 'api.host = ""'),
      /^weft: config key api\.host: "" is not allowed; expected a non-empty string$/,
    );
    refused(
      show(t.dir, '', { WEFT_REDIS_URL: 'nonsense' }),
      /^weft: config key redis\.url \(WEFT_REDIS_URL\): "no\*\*\*se" is not allowed; expected a redis:\/\/ or rediss:\/\/ URL$/,
    );
    refused(
      show(t.dir, '', { WEFT_MESH_PROVIDER: 'redis' }),
      /^weft: config key mesh\.provider \(WEFT_MESH_PROVIDER\): "redis" needs redis\.url to be set$/,
    );
    // The same key from the file names no variable.
    refused(show(t.dir, 'redis.url = "nonsense"'), /^weft: config key redis\.url: "no\*\*\*se" is not allowed/);
  } finally {
    t.cleanup();
  }
});

test('a misspelt WEFT_ variable is named with the one meant, on every command; a far-off name is not', () => {
  const t = tempDir('weft-config-file-');
  try {
    const r = show(t.dir, '', { WEFT_API_PROT: '9411', WEFT_MESH_PROVIDR: 'tls', WEFT_BUILD_LABEL: 'x' });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^weft: warning: WEFT_API_PROT is set, but Weft reads no such variable \(did you mean WEFT_API_PORT\?\); it is ignored$/m);
    assert.match(r.stderr, /WEFT_MESH_PROVIDR is set, .*\(did you mean WEFT_MESH_PROVIDER\?\)/);
    assert.doesNotMatch(r.stderr, /WEFT_BUILD_LABEL/);
    // Ignored indeed: the port stays the default.
    assert.match(r.stdout, /^api\.port = \d+$/m);
    assert.doesNotMatch(r.stdout, /^api\.port = 9411$/m);
    // The CLI of a script that only emits says it too.
    const emit = weft(['emit', 'x.y'], { HOME: t.dir, WEFT_URL: 'http://127.0.0.1:1', WEFT_TOKN: 'secret' });
    assert.match(emit.stderr, /WEFT_TOKN is set, but Weft reads no such variable \(did you mean WEFT_TOKEN\?\)/);
  } finally {
    t.cleanup();
  }
});

test('config show names the NATS (and Redis) servers and masks only their passwords and tokens, whole', () => {
  const t = tempDir('weft-config-file-');
  try {
    const r = show(t.dir, 'nats.url = "nats://weft:s3cret@10.0.0.5:4222,nats://weft:s3cret@10.0.0.6:4222"');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^nats\.url = "nats:\/\/weft:\*\*\*@10\.0\.0\.5:4222,nats:\/\/weft:\*\*\*@10\.0\.0\.6:4222"$/m);
    const token = show(t.dir, 'nats.url = "tls://t0ken-abc@nats.example:4222"');
    assert.match(token.stdout, /^nats\.url = "tls:\/\/\*\*\*@nats\.example:4222"$/m);
    assert.doesNotMatch(token.stdout, /t0ken-abc/);
    const at = show(t.dir, 'nats.url = "nats://weft:p@ss@10.0.0.5:4222"');
    assert.match(at.stdout, /^nats\.url = "nats:\/\/weft:\*\*\*@10\.0\.0\.5:4222"$/m, 'a password holding an @ is masked whole');
    const redis = show(t.dir, 'redis.url = "redis://:p@ss@127.0.0.1:6379"');
    assert.match(redis.stdout, /^redis\.url = "redis:\/\/:\*\*\*@127\.0\.0\.1:6379"$/m, 'the same for a Redis password');
    const plain = show(t.dir, 'nats.url = "nats://127.0.0.1:4222"');
    assert.match(plain.stdout, /^nats\.url = "nats:\/\/127\.0\.0\.1:4222"$/m);
  } finally {
    t.cleanup();
  }
});
