import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { StoreError } from '../errors/index.js';
import { processAlive } from '../util/index.js';

/**
 * One daemon per data dir: `<dataDir>/weft.lock` holds the owner's pid. A lock left by a dead
 * process is taken over; a live owner makes the second daemon stop with a clear message.
 */
export function acquireLock(dataDir: string): { release(): void } {
  const path = join(dataDir, 'weft.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return {
        release() {
          try {
            if (readFileSync(path, 'utf8') === String(process.pid)) rmSync(path);
          } catch {
            // already gone
          }
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(readFileSync(path, 'utf8'));
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) {
        throw new StoreError('WEFT_LOCKED', `another weft daemon (pid ${pid}) is already running on ${dataDir}`);
      }
      rmSync(path, { force: true });
    }
  }
  throw new StoreError('WEFT_LOCKED', `cannot take the lock ${path}`);
}

