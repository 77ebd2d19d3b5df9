#!/usr/bin/env node
/**
 * cli: the `weft` command (alias `telec`). Talks to the running daemon through its API.
 * This entry loads nothing for `weft --version`; every other command loads the program
 * (program.ts), which loads each command's own modules when it runs.
 */
import { moduleLoadHint } from './load-hint.js';

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  const { VERSION } = await import('../version.js');
  console.log(VERSION);
} else {
  // Loading the program opens many files at once: with too few file descriptors it fails here.
  await import('./program.js').catch((err: unknown) => {
    console.error(`weft: ${(err as Error).message ?? String(err)}${moduleLoadHint(err)}`);
    process.exitCode = 1;
  });
}
