import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * Node loads a command's modules many files at once; under a low open-file limit (ulimit -n 128)
 * those opens fail with EMFILE and Node reports a file that is there as not found ("Cannot find
 * package .../pino/index.js"), which sends a user to reinstall. Said as what it is.
 */
export function moduleLoadHint(err: unknown): string {
  const e = err as { code?: string; message?: string };
  if (e.code !== 'EMFILE' && e.code !== 'ENFILE') {
    if (e.code !== 'ERR_MODULE_NOT_FOUND') return '';
    const named = /Cannot find (?:package|module) '([^']+)'/.exec(e.message ?? '')?.[1];
    // A package whose package.json Node could not open is looked for as <dir>/index.js.
    if (!named || !(existsSync(named) || existsSync(join(dirname(named), 'package.json')))) return '';
  }
  let limit = '';
  try {
    limit = /^Max open files\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? '';
  } catch {
    // no /proc: the hint goes without the figure
  }
  const installed =
    e.code === 'ERR_MODULE_NOT_FOUND' ? 'it is installed; Node could not open it, most likely ' : '';
  return ` (${installed}for want of file descriptors: the open-file limit (ulimit -n${limit ? `, now ${limit}` : ''}) is too low for Weft; raise it to 1024 or more: 'ulimit -n 1024', or LimitNOFILE= in a systemd unit)`;
}
