/**
 * HTTP side of the metrics: request timing on the public server, and the separate `/metrics` listener.
 *
 * Timing runs in the first onRequest hook and ends when the response is finished, so it covers what
 * Fastify routes answer, what the rate limits refuse and what the provider (a middleware that never
 * reaches a Fastify route) answers. `route` is the route template; provider requests are named by the
 * provider's route (`/oidc/token`), anything else unmatched is `unmatched`: never a raw URL.
 *
 * The listener is a bare node:http server on METRICS_PORT, bound to HOST, never on the public port, so an
 * ingress that exposes the service cannot expose its metrics.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { LoginChannel, Metrics } from '../services/metrics.js';

/** Fastify routes where a refused request is a refused sign-in attempt. */
const LOGIN_ROUTES: Record<string, LoginChannel> = { '/api/auth/login/': 'api', '/interaction/:uid/login': 'browser' };

/** Names the provider route a raw URL reached (src/oidc/routes.ts; passed in so plugins stay out of src/oidc). */
export type ProviderRouteOf = (url: string) => string | undefined;

export function registerRequestMetrics(app: FastifyInstance, metrics: Metrics, options: { providerRouteOf: ProviderRouteOf }): void {
  app.addHook('onRequest', async (request, reply) => {
    const started = performance.now();
    // Named now: the provider's middleware rewrites the raw URL while it handles the request.
    const route = routeLabel(request, options.providerRouteOf);
    // 'finish': the whole response was handed to the OS, whoever wrote it (a route, a hook, the provider).
    reply.raw.once('finish', () => {
      metrics.observeRequest(request.method, route, reply.raw.statusCode, (performance.now() - started) / 1000);
    });
  });
}

/** The route label of a request: its Fastify route template, else the provider route it reached. */
export function routeLabel(request: FastifyRequest, providerRouteOf: ProviderRouteOf): string {
  return request.routeOptions.url ?? providerRouteOf(request.url) ?? 'unmatched';
}

/** The channel when this request is a sign-in attempt. */
export function loginChannelOf(request: FastifyRequest): LoginChannel | undefined {
  const route = request.routeOptions.url;
  return request.method === 'POST' && route ? LOGIN_ROUTES[route] : undefined;
}

export interface MetricsListener {
  /** The port it listens on (useful when 0 was asked of the OS in tests). */
  port: number;
  close(): Promise<void>;
}

/** Serves the registry at GET /metrics in the Prometheus text format; everything else is 404. */
export async function listenForMetrics(metrics: Metrics, options: { port: number; host: string }): Promise<MetricsListener> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0];
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
      return;
    }
    metrics.registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': metrics.registry.contentType, 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      () => res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('metrics collection failed\n'),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
