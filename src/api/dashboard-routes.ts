/**
 * The dashboard's routes: its assets (shipped in the package, no internet at run time), the
 * one-time login, the session (role and CSRF token), and the last hour of a few node figures
 * for the mesh page's charts (sampled every 10 s into a bounded ring).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Type } from '@sinclair/typebox';
import type { HttpApp } from './http.js';
import { WeftError } from '../errors/index.js';
import { type DashboardAuth, type DashboardRole, sessionCookie } from './dashboard-auth.js';
import { sessionOfRequest } from './server.js';

/** Where the built dashboard assets are (dist/src/web next to dist/src/api). */
export const WEB_DIR = fileURLToPath(new URL('../web/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** The page's own policy: scripts and styles from this origin only, no framing, no inline script. */
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

export interface DashboardRoutesDeps {
  auth: DashboardAuth;
  /** This node's name, for the page title. */
  computer: string;
  /** A few figures sampled every 10 s for the charts (events processed so far, outbox depth, mean RTT, …). */
  sample?: () => Record<string, number>;
  /** Directory of the assets (default WEB_DIR). */
  webDir?: string;
}

/** Samples kept: one hour at one per 10 s. */
export const SERIES_SAMPLES = 360;

/** Registers the dashboard; returns a stop function for the sampler. */
export function dashboardRoutes(deps: DashboardRoutesDeps): (app: HttpApp) => void {
  return (app) => {
    const dir = deps.webDir ?? WEB_DIR;
    // Read once at start: the set of files is fixed, and a path outside it can never be served.
    const assets = new Map<string, { type: string; body: Buffer }>();
    try {
      for (const f of readdirSync(dir)) {
        const type = TYPES[extname(f)];
        if (type) assets.set(f, { type, body: readFileSync(join(dir, f)) });
      }
    } catch {
      // No assets (a build without them): the API still works; / says so.
    }
    const page = (name: string) => {
      const a = assets.get(name);
      if (!a) throw new WeftError('WEFT_NOT_FOUND', `dashboard asset ${name} is missing from ${dir} (run npm run build)`);
      return a;
    };

    const series: Array<{ at: number } & Record<string, number>> = [];
    if (deps.sample) {
      const take = () => {
        try {
          series.push({ at: Date.now(), ...(deps.sample as () => Record<string, number>)() });
          if (series.length > SERIES_SAMPLES) series.shift();
        } catch {
          // A sample that fails (the node stopping) is skipped.
        }
      };
      take();
      // A real timer on purpose: it paces what a person looks at, not the node's logic.
      const t = setInterval(take, 10_000);
      t.unref();
      app.addHook('onClose', async () => clearInterval(t));
    }

    app.get('/', async (_req, reply) => {
      const a = page('index.html');
      return reply.type(a.type).header('content-security-policy', CSP).header('x-frame-options', 'DENY').header('cache-control', 'no-store').send(a.body);
    });
    app.get('/assets/:file', { schema: { params: Type.Object({ file: Type.String({ pattern: '^[a-z0-9-]+\\.(js|css|svg)$' }) }) } }, async (req, reply) => {
      const a = page((req.params as { file: string }).file);
      return reply.type(a.type).header('cache-control', 'no-cache').header('x-content-type-options', 'nosniff').send(a.body);
    });
    // A link cut short or mangled gets the same page as a used one (not a JSON error in a browser tab).
    app.get('/login', { schema: { querystring: Type.Object({ code: Type.Optional(Type.String()) }) } }, async (req, reply) => {
      try {
        const code = (req.query as { code?: string }).code ?? '';
        if (code.length < 10 || code.length > 100) {
          throw new WeftError('WEFT_UNAUTHORIZED', 'this is not a whole login link: run `weft dashboard` again for a new one');
        }
        const s = deps.auth.redeem(code);
        return reply.header('set-cookie', sessionCookie(s)).header('cache-control', 'no-store').redirect('/', 303);
      } catch (err) {
        return reply
          .status(401)
          .type('text/html; charset=utf-8')
          .header('content-security-policy', CSP)
          .send(`<!doctype html><meta charset="utf-8"><title>Weft</title><p>${(err as Error).message.replace(/[<>&]/g, '')}</p>`);
      }
    });

    app.post(
      '/api/dashboard/login-link',
      { schema: { body: Type.Object({ role: Type.Optional(Type.Union([Type.Literal('admin'), Type.Literal('read')])) }, { additionalProperties: false }) } },
      async (req) => {
        // Only a token holder mints links: a dashboard session cannot widen itself.
        if (sessionOfRequest(req)) throw new WeftError('WEFT_FORBIDDEN', 'a dashboard session cannot create login links: use `weft dashboard`');
        const role = ((req.body as { role?: DashboardRole } | undefined)?.role ?? 'admin') as DashboardRole;
        const link = deps.auth.createLink(role);
        const host = String(req.headers.host ?? '127.0.0.1');
        return { url: `http://${host}/login?code=${link.code}`, role, expiresAt: new Date(link.expiresAt).toISOString() };
      },
    );
    app.get('/api/session', async (req) => {
      const s = sessionOfRequest(req);
      return s ? { via: 'session', role: s.role, csrf: s.csrf, computer: deps.computer, expiresAt: new Date(s.expiresAt).toISOString() } : { via: 'token', role: 'admin', csrf: null, computer: deps.computer };
    });
    app.post('/api/session/logout', async (req, reply) => {
      const s = sessionOfRequest(req);
      if (s) deps.auth.logout(s);
      return reply.header('set-cookie', 'weft_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0').send({ ok: true });
    });
    app.get('/api/dashboard/series', async () => ({ every: 10, samples: series }));
  };
}
