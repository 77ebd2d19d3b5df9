import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  daemonEnvironment,
  launchdPlist,
  resolvePlatform,
  servicePaths,
  systemdEnvironmentFile,
  systemdUnit,
} from '../../src/service/index.js';
import { tempDir } from '../helpers/tmp.js';
import { hasCommand, parsePlist, specFor } from './fakes.js';

const ENV = {
  WEFT_API_PORT: '9300',
  WEFT_COMPUTER_NAME: 'laptop',
  WEFT_REDIS_URL: 'redis://:s3cret@127.0.0.1:6379',
  WEFT_TELEGRAM_BOT_TOKEN: '123:abc',
  WEFT_TOKEN: 'client-token',
  WEFT_URL: 'http://127.0.0.1:9237',
  WEFT_CONFIG: '/etc/weft.toml',
  WEFT_TEST_TIMEOUT_MS: '1',
  PATH: '/usr/bin',
};

test('the systemd unit runs this node and main.js as `daemon`, restarts on failure, logs to the data dir and reads a 0600 environment file', () => {
  const t = tempDir('weft-service-gen-');
  try {
    const spec = specFor(t.dir, 'linux', ENV, { config: join(t.dir, 'config.toml') });
    const data = join(t.dir, '.weft', 'data');
    assert.deepEqual(
      spec.files.map((f) => [f.role, f.path]),
      [
        ['unit', join(t.dir, '.config', 'systemd', 'user', 'weft.service')],
        ['environment', join(data, 'service.env')],
      ],
    );
    const unit = spec.files[0]?.text as string;
    const lines = unit.split('\n');
    for (const l of [
      '[Unit]',
      '[Service]',
      `ExecStart=${process.execPath} ${join(t.dir, 'weft', 'dist', 'src', 'cli', 'main.js')} daemon --config ${join(t.dir, 'config.toml')}`,
      'Restart=on-failure',
      'RestartSec=2',
      `EnvironmentFile=${join(data, 'service.env')}`,
      `StandardOutput=append:${join(data, 'logs', 'service.log')}`,
      `StandardError=append:${join(data, 'logs', 'service.log')}`,
      `WorkingDirectory=${data}`,
      'UMask=0077',
      '[Install]',
      'WantedBy=default.target',
    ]) {
      assert.ok(lines.includes(l), `the unit has the line ${l}\n${unit}`);
    }
    assert.ok(!/Environment=WEFT|s3cret|123:abc/.test(unit), 'no setting, and no secret, in the unit itself');
    assert.equal(spec.mode, 0o600);

    const env = spec.files[1]?.text as string;
    assert.match(env, /^WEFT_API_PORT="9300"$/m);
    assert.match(env, /^WEFT_COMPUTER_NAME="laptop"$/m);
    assert.match(env, /^WEFT_REDIS_URL="redis:\/\/:s3cret@127\.0\.0\.1:6379"$/m);
    assert.match(env, /^WEFT_TELEGRAM_BOT_TOKEN="123:abc"$/m);
    for (const left of ['WEFT_TOKEN', 'WEFT_URL', 'WEFT_CONFIG', 'WEFT_TEST_TIMEOUT_MS', 'PATH']) {
      assert.doesNotMatch(env, new RegExp(`^${left}=`, 'm'), `${left} is not copied`);
    }
    const shown = spec.files[1]?.shown as string;
    assert.match(shown, /^WEFT_REDIS_URL="\*{8}"$/m, 'secrets are masked in what is shown');
    assert.match(shown, /^WEFT_TELEGRAM_BOT_TOKEN="\*{8}"$/m);
    assert.doesNotMatch(shown, /s3cret|123:abc/);
  } finally {
    t.cleanup();
  }
});

test('systemd-analyze verify accepts the unit, also with spaces, % and $ in the paths', (t) => {
  if (!hasCommand('systemd-analyze')) {
    t.skip(
      'systemd-analyze is not installed on this machine (the unit text is still checked line by line above)',
    );
    return;
  }
  const tmp = tempDir('weft-service-verify-');
  try {
    for (const home of [tmp.dir, join(tmp.dir, 'odd home %h $HOME "q"')]) {
      const spec = specFor(home, 'linux', ENV, { config: join(home, 'my config%.toml') });
      const dir = join(tmp.dir, `unit-${home === tmp.dir ? 'plain' : 'odd'}`);
      mkdirSync(dir, { recursive: true });
      const file = join(dir, 'weft.service');
      writeFileSync(file, spec.files[0]?.text as string);
      const r = spawnSync('systemd-analyze', ['verify', '--man=no', file], {
        encoding: 'utf8',
        timeout: 30_000,
      });
      const ours = r.stderr
        .split('\n')
        .filter((l) => l.includes('weft.service'))
        .join('\n');
      assert.equal(r.status, 0, `systemd-analyze verify: ${r.stderr}`);
      assert.equal(ours, '', `systemd-analyze has nothing to say about weft.service:\n${r.stderr}`);
    }
  } finally {
    tmp.cleanup();
  }
});

test('the unit escapes what systemd would expand: % specifiers, $ variables, quotes in ExecStart', () => {
  const unit = systemdUnit({
    command: ['/opt/node', '/a b/main.js', 'daemon', '--config', '/c/100%"x"$HOME.toml'],
    dataDir: '/d/50%',
    logFile: '/d/50%/logs/service.log',
    variables: {},
    environmentFile: '/d/50%/service.env',
  });
  assert.match(
    unit,
    /^ExecStart=\/opt\/node "\/a b\/main\.js" daemon --config "\/c\/100%%\\"x\\"\$\$HOME\.toml"$/m,
  );
  assert.match(unit, /^WorkingDirectory=\/d\/50%%$/m);
  assert.match(unit, /^EnvironmentFile=\/d\/50%%\/service\.env$/m);
  assert.throws(
    () => systemdUnit({ command: ['/n', 'a\nb'], dataDir: '/d', logFile: '/d/l', variables: {} }),
    /control character/,
  );
});

test('the environment file quotes values so systemd reads them back exactly', () => {
  const text = systemdEnvironmentFile({ WEFT_COMPUTER_NAME: 'a"b$c`d\\e f' });
  assert.match(text, /^WEFT_COMPUTER_NAME="a\\"b\\\$c\\`d\\\\e f"$/m);
  assert.throws(
    () => daemonEnvironment({ env: { WEFT_COMPUTER_NAME: 'a\nb' }, cwd: '/' }),
    /WEFT_COMPUTER_NAME holds a control character/,
  );
});

test('only the WEFT_* settings the daemon reads are copied; relative paths become absolute; --log-level wins', () => {
  const e = daemonEnvironment({
    env: {
      ...ENV,
      WEFT_DATA_DIR: 'rel/data',
      WEFT_OBSERVE_SPOOL_DIR: '/run/spool',
      WEFT_LOG_LEVEL: 'info',
      WEFT_EMPTY: '',
    },
    cwd: '/home/caro',
    overrides: { WEFT_LOG_LEVEL: 'debug' },
  });
  assert.deepEqual(Object.keys(e.variables), [
    'WEFT_API_PORT',
    'WEFT_COMPUTER_NAME',
    'WEFT_DATA_DIR',
    'WEFT_LOG_LEVEL',
    'WEFT_OBSERVE_SPOOL_DIR',
    'WEFT_REDIS_URL',
    'WEFT_TELEGRAM_BOT_TOKEN',
  ]);
  assert.equal(e.variables.WEFT_DATA_DIR, '/home/caro/rel/data');
  assert.equal(e.variables.WEFT_LOG_LEVEL, 'debug');
  assert.deepEqual(e.secret, ['WEFT_REDIS_URL', 'WEFT_TELEGRAM_BOT_TOKEN']);
  assert.deepEqual(e.skipped, [
    { name: 'WEFT_TEST_TIMEOUT_MS', reason: 'not a config setting' },
    { name: 'WEFT_TOKEN', reason: 'read by clients, not the daemon' },
    { name: 'WEFT_URL', reason: 'read by clients, not the daemon' },
  ]);
});

test('the unit goes under $XDG_CONFIG_HOME when it is absolute, else ~/.config', () => {
  const at = (env: NodeJS.ProcessEnv) =>
    servicePaths({ platform: 'linux', home: '/home/caro', dataDir: '/d', env }).definition;
  assert.equal(at({}), '/home/caro/.config/systemd/user/weft.service');
  assert.equal(at({ XDG_CONFIG_HOME: '/xdg' }), '/xdg/systemd/user/weft.service');
  assert.equal(at({ XDG_CONFIG_HOME: 'relative' }), '/home/caro/.config/systemd/user/weft.service');
  assert.equal(
    servicePaths({ platform: 'darwin', home: '/Users/caro', dataDir: '/d' }).definition,
    '/Users/caro/Library/LaunchAgents/dev.weft.daemon.plist',
  );
});

test('the launchd plist is well formed and has every key: ProgramArguments, RunAtLoad, KeepAlive on failure, logs, environment, working directory', (t) => {
  const tmp = tempDir('weft-service-plist-');
  try {
    const spec = specFor(
      tmp.dir,
      'darwin',
      { ...ENV, WEFT_COMPUTER_NAME: 'caro & <co>' },
      { config: join(tmp.dir, 'c.toml') },
    );
    const data = join(tmp.dir, '.weft', 'data');
    assert.deepEqual(
      spec.files.map((f) => [f.role, f.path]),
      [['plist', join(tmp.dir, 'Library', 'LaunchAgents', 'dev.weft.daemon.plist')]],
    );
    const text = spec.files[0]?.text as string;
    const p = parsePlist(text);
    assert.deepEqual(p, {
      Label: 'dev.weft.daemon',
      ProgramArguments: [
        process.execPath,
        join(tmp.dir, 'weft', 'dist', 'src', 'cli', 'main.js'),
        'daemon',
        '--config',
        join(tmp.dir, 'c.toml'),
      ],
      RunAtLoad: true,
      KeepAlive: { SuccessfulExit: false },
      WorkingDirectory: data,
      EnvironmentVariables: {
        WEFT_API_PORT: '9300',
        WEFT_COMPUTER_NAME: 'caro & <co>',
        WEFT_REDIS_URL: 'redis://:s3cret@127.0.0.1:6379',
        WEFT_TELEGRAM_BOT_TOKEN: '123:abc',
      },
      StandardOutPath: join(data, 'logs', 'service.log'),
      StandardErrorPath: join(data, 'logs', 'service.log'),
      Umask: 0o077,
    });
    assert.doesNotMatch(
      spec.files[0]?.shown as string,
      /s3cret|123:abc/,
      'secrets are masked in what is shown',
    );
    assert.throws(
      () => parsePlist(text.replace('</array>', '')),
      /not well formed|expected/,
      'the checker does catch a broken plist',
    );
    if (hasCommand('plutil')) {
      const file = join(tmp.dir, 'dev.weft.daemon.plist');
      writeFileSync(file, text);
      const r = spawnSync('plutil', ['-lint', file], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stdout + r.stderr);
    } else {
      t.diagnostic('plutil is not installed here: the plist was checked with the XML reader in fakes.ts');
    }
    const empty = parsePlist(
      launchdPlist({ command: ['/n', 'm', 'daemon'], dataDir: '/d', logFile: '/d/l', variables: {} }),
    );
    assert.deepEqual(empty.EnvironmentVariables, {});
  } finally {
    tmp.cleanup();
  }
});

test('the platform is the running one unless --platform says otherwise; others are refused with the way out', () => {
  assert.equal(resolvePlatform(undefined, 'linux'), 'linux');
  assert.equal(resolvePlatform(undefined, 'darwin'), 'darwin');
  assert.equal(resolvePlatform('darwin', 'linux'), 'darwin');
  assert.throws(
    () => resolvePlatform(undefined, 'win32'),
    /systemd \(linux\) and launchd \(darwin\), not win32; run 'weft daemon' under/,
  );
  assert.throws(() => resolvePlatform('bsd', 'linux'), /--platform must be one of linux, darwin/);
});
