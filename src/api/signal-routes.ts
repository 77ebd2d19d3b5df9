/** The signal pipeline over HTTP: sources and their polling state, a poll or a clustering pass now, re-enabling a source. */
import { Type } from '@sinclair/typebox';
import type { HttpApp } from './http.js';
import { WeftError } from '../errors/index.js';
import type { SignalService } from '../signals/index.js';

/** Collaborators of the signal routes: the running service, or none when no source is configured. */
export interface SignalRoutesDeps {
  signals: SignalService | undefined;
}

const SourceParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 200 }) });
const PollBody = Type.Object({ source: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })) }, { additionalProperties: false });

/** `GET /api/signals`, `POST /api/signals/poll`, `POST /api/signals/cluster`, `POST /api/signals/sources/:id/enable`. */
export function signalRoutes(deps: SignalRoutesDeps): (app: HttpApp) => void {
  const service = (): SignalService => {
    if (!deps.signals) throw new WeftError('WEFT_CONFIG', 'no signal source is configured: add [[signals.sources]] to the config (docs/signals.md) and restart the daemon');
    return deps.signals;
  };
  return (app) => {
    app.get('/api/signals', async () => (deps.signals ? { running: true, ...deps.signals.status() } : { running: false, sources: [], lastCluster: null }));
    app.post('/api/signals/poll', { schema: { body: PollBody } }, async (req) => ({ polls: await service().pollNow((req.body as { source?: string } | undefined)?.source) }));
    app.post('/api/signals/cluster', async () => service().clusterNow());
    app.post('/api/signals/sources/:id/enable', { schema: { params: SourceParams } }, async (req) => {
      await service().enable((req.params as { id: string }).id);
      return { enabled: (req.params as { id: string }).id };
    });
  };
}
