/** Test doubles for `weft service`: a scripted exec, a plist reader, and the spec of a temp HOME. */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import {
  type ExecFn,
  type ExecResult,
  type ServicePlatform,
  type ServiceSpec,
  serviceSpec,
} from '../../src/service/index.js';

/** The message `systemctl --user` prints in a container or CI: there is no user bus. */
export const NO_BUS = 'Failed to connect to bus: No medium found';

/** An exec that answers from a script and records each call as a command line. */
export function scriptedExec(answer: (argv: string[]) => Partial<ExecResult> | undefined): {
  exec: ExecFn;
  calls: string[];
} {
  const calls: string[] = [];
  const exec: ExecFn = async (file, args) => {
    const argv = [file, ...args];
    calls.push(argv.join(' '));
    const a = answer(argv) ?? {};
    return {
      code: a.code === undefined ? 0 : a.code,
      stdout: a.stdout ?? '',
      stderr: a.stderr ?? '',
      missing: a.missing ?? false,
    };
  };
  return { exec, calls };
}

/** No user bus: every `systemctl --user` fails the way it does without one; launchctl is not installed. */
export function noBus(): { exec: ExecFn; calls: string[] } {
  return scriptedExec((argv) =>
    argv[0] === 'systemctl'
      ? { code: 1, stderr: `${NO_BUS}\n` }
      : { code: null, missing: true, stderr: `${argv[0]}: not found` },
  );
}

/**
 * A reachable systemd user manager that remembers whether weft.service is enabled and active.
 * `fail` makes the named verb fail.
 */
export function fakeSystemd(opts: { fail?: string } = {}): {
  exec: ExecFn;
  calls: string[];
  state: { active: boolean; enabled: boolean };
} {
  const state = { active: false, enabled: false };
  const { exec, calls } = scriptedExec((argv) => {
    const verb = argv[2];
    if (verb === opts.fail)
      return { code: 1, stderr: `Failed to ${verb} unit: Unit weft.service has a bad unit file setting.` };
    switch (verb) {
      case 'show':
        return argv.includes('--property=MainPID')
          ? { stdout: state.active ? '4242\n' : '0\n' }
          : { stdout: 'Version=252\n' };
      case 'is-active':
        return { code: state.active ? 0 : 3, stdout: state.active ? 'active\n' : 'inactive\n' };
      case 'is-enabled':
        return { code: state.enabled ? 0 : 1, stdout: state.enabled ? 'enabled\n' : 'disabled\n' };
      case 'enable':
        state.enabled = true;
        if (argv.includes('--now')) state.active = true;
        return {};
      case 'disable':
        state.enabled = false;
        if (argv.includes('--now')) state.active = false;
        return {};
      case 'restart':
        state.active = true;
        return {};
      default:
        return {};
    }
  });
  return { exec, calls, state };
}

/** A reachable launchd GUI domain that remembers whether dev.weft.daemon is loaded. */
export function fakeLaunchd(opts: { refuseBootstrap?: boolean } = {}): {
  exec: ExecFn;
  calls: string[];
  state: { loaded: boolean };
} {
  const state = { loaded: false };
  const { exec, calls } = scriptedExec((argv) => {
    const [, verb, arg] = argv;
    switch (verb) {
      case 'print':
        if (arg?.endsWith('/dev.weft.daemon')) {
          return state.loaded
            ? { stdout: 'gui/501/dev.weft.daemon = {\n\tstate = running\n\tpid = 812\n}\n' }
            : { code: 113, stderr: `Could not find service "dev.weft.daemon" in domain for port` };
        }
        return { stdout: 'gui/501 = {\n}\n' };
      case 'bootstrap':
        if (opts.refuseBootstrap) return { code: 5, stderr: 'Bootstrap failed: 5: Input/output error' };
        state.loaded = true;
        return {};
      case 'load':
        state.loaded = true;
        return {};
      case 'bootout':
        if (!state.loaded) return { code: 3, stderr: 'Boot-out failed: 3: No such process' };
        state.loaded = false;
        return {};
      default:
        return {};
    }
  });
  return { exec, calls, state };
}

/** The spec for a temp HOME, this node binary and the built CLI. */
export function specFor(
  home: string,
  platform: ServicePlatform,
  env: NodeJS.ProcessEnv = {},
  extra: { config?: string; dataDir?: string } = {},
): ServiceSpec {
  return serviceSpec({
    platform,
    node: process.execPath,
    main: join(home, 'weft', 'dist', 'src', 'cli', 'main.js'),
    ...(extra.config ? { config: extra.config } : {}),
    dataDir: extra.dataDir ?? join(home, '.weft', 'data'),
    home,
    uid: 501,
    env,
    cwd: home,
  });
}

/** Whether a program is on PATH. */
export function hasCommand(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).status === 0;
}

type PlistValue = string | number | boolean | PlistValue[] | { [k: string]: PlistValue };

/**
 * A tiny plist reader: checks the XML is well formed (every tag closed in order, entities known,
 * nothing outside the root) and returns the value, so a test reads keys as plutil would.
 */
export function parsePlist(xml: string): Record<string, PlistValue> {
  let rest = xml.replace(/^<\?xml [^?]*\?>\s*/, '').replace(/^<!DOCTYPE plist [^>]*>\s*/, '');
  rest = rest.replace(/<!--[\s\S]*?-->/g, '');
  const tokens = [...rest.matchAll(/<(\/?)([A-Za-z]+)((?:\s+[a-z]+="[^"]*")*)\s*(\/?)>|([^<]+)/g)];
  const consumed = tokens.map((t) => t[0]).join('');
  if (consumed !== rest) throw new Error('not well formed: stray markup');
  let i = 0;
  const next = () => {
    const t = tokens[i++];
    if (!t) throw new Error('not well formed: ends early');
    return t;
  };
  const skipSpace = () => {
    for (let s = tokens[i]?.[5]; s !== undefined && s.trim() === ''; s = tokens[i]?.[5]) i++;
  };
  const text = (s: string) => {
    if (/&(?!amp;|lt;|gt;|quot;|apos;)/.test(s)) throw new Error(`not well formed: bad entity in ${s}`);
    return s
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&quot;/g, '"')
      .replace(/&apos;/g, "'")
      .replace(/&amp;/g, '&');
  };
  const close = (name: string) => {
    const t = next();
    if (t[1] !== '/' || t[2] !== name) throw new Error(`not well formed: expected </${name}>, got ${t[0]}`);
  };
  const value = (): PlistValue => {
    skipSpace();
    const t = next();
    const [, slash, name, , selfClosing] = t;
    if (slash || !name) throw new Error(`not well formed: unexpected ${t[0]}`);
    if (selfClosing) {
      if (name === 'true') return true;
      if (name === 'false') return false;
      if (name === 'dict') return {};
      if (name === 'array') return [];
      throw new Error(`unexpected <${name}/>`);
    }
    if (name === 'string' || name === 'integer' || name === 'key') {
      let s = '';
      if (tokens[i]?.[5] !== undefined) s = text(next()[5] as string);
      close(name);
      return name === 'integer' ? Number(s) : s;
    }
    if (name === 'array') {
      const out: PlistValue[] = [];
      for (;;) {
        skipSpace();
        if (tokens[i]?.[1] === '/') break;
        out.push(value());
      }
      close('array');
      return out;
    }
    if (name === 'dict') {
      const out: Record<string, PlistValue> = {};
      for (;;) {
        skipSpace();
        if (tokens[i]?.[1] === '/') break;
        if (tokens[i]?.[2] !== 'key') throw new Error(`dict: expected <key>, got ${tokens[i]?.[0]}`);
        const k = value() as string;
        out[k] = value();
      }
      close('dict');
      return out;
    }
    throw new Error(`unknown element <${name}>`);
  };
  skipSpace();
  const root = next();
  if (root[2] !== 'plist' || root[1] || root[4]) throw new Error('the root is not <plist>');
  const v = value();
  skipSpace();
  close('plist');
  skipSpace();
  if (i !== tokens.length) throw new Error('not well formed: content after </plist>');
  if (typeof v !== 'object' || Array.isArray(v)) throw new Error('the plist is not a dict');
  return v as Record<string, PlistValue>;
}
