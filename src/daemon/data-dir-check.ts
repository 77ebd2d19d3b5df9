import { statSync } from 'node:fs';

/**
 * Why a data dir cannot be used by this user, or undefined when it can (or does not exist yet:
 * it is made on first start). The daemon refuses to start on it (`securePrivateDir`), and
 * `weft doctor` says the same instead of "no database yet". Root may use any directory.
 */
export function privateDirProblem(dir: string): string | undefined {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ENOTDIR')
      return `config key data_dir: ${dir} is under a file, not a directory; point data_dir at a directory (it is created if missing)`;
    return `config key data_dir: cannot read ${dir}: ${code ?? (err as Error).message}`;
  }
  if (!st.isDirectory())
    return `config key data_dir: ${dir} is a file, not a directory; point data_dir at a directory (it is created if missing)`;
  const uid = process.getuid?.();
  if (uid !== undefined && uid !== 0 && st.uid !== uid) {
    return `data dir ${dir} belongs to another user (uid ${st.uid}, this is uid ${uid}); run weft as its owner, or point data_dir at a directory of yours`;
  }
  return undefined;
}
