import type { WeftConfig } from '../config/index.js';
import type { Clock } from '../util/index.js';
import { VERSION } from '../version.js';
import { startDaemon } from './daemon.js';

/**
 * `weft daemon` in the foreground: starts the node, prints where it is, stops cleanly on
 * SIGINT/SIGTERM (within `daemon.stop_timeout`) and exits. Library code never prints; this is
 * the command's own output.
 */
export async function runDaemon(config: WeftConfig, opts: { clock?: Clock } = {}): Promise<never> {
  // What this command prints is for whoever started it; if they stopped reading (`weft daemon |
  // head`, a closed terminal), a write fails with EPIPE: that must not end the node, least of all
  // in the middle of its stop (everything that matters is in the log file).
  for (const out of [process.stdout, process.stderr]) out.on('error', () => undefined);
  const d = await startDaemon(config, { stderrLogs: false, ...(opts.clock ? { clock: opts.clock } : {}) });
  // Signal handlers first: a supervisor may signal as soon as it sees the address.
  const stopped = new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      console.log(`${sig}: draining and stopping...`);
      d.stop().then(resolve, (err) => {
        console.error(`stop failed: ${(err as Error).message}`);
        process.exitCode = 1;
        resolve();
      });
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  const mesh = d.assembled.mesh;
  console.log(`weft ${VERSION} node '${config.computer.name}' running`);
  console.log(`  API:        ${d.info.url}  (bearer token in ${d.info.tokenFile})`);
  console.log(`  bus:        ${d.node.bus.description}`);
  console.log(`  identity:   ${d.assembled.identity.fingerprint}  ${d.assembled.identity.nodeId}`);
  console.log(
    `  mesh:       ${mesh ? `${mesh.provider.name}${config.mesh.provider === 'tls' ? ` on ${config.mesh.tls_host}:${config.mesh.tls_port}` : ''}, ${d.assembled.peers.getAllPeers().length} peers known` : 'off (set mesh.provider to share events)'}`,
  );
  console.log(`  data dir:   ${config.data_dir}`);
  console.log(`  logs:       ${d.info.logFile}  (weft logs -f)`);
  if (d.rolledBack)
    console.log(
      `  ROLLED BACK: ${d.rolledBack.lost} acknowledged events were rolled back (the database ends at log position ${d.rolledBack.foundSeq}, the last recorded commit was ${d.rolledBack.recordedSeq}); see weft doctor`,
    );
  await stopped;
  console.log('stopped');
  // A stop that timed out may leave sockets open: do not wait for them.
  process.exit(process.exitCode ?? 0);
}
