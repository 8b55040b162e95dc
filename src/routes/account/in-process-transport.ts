/**
 * The account pages' requests to the provider, answered by this same app through `inject` (no socket, no
 * DNS, no TLS): the provider runs in this process. The browser's address is passed on, so the provider's
 * rate limits and audit events see the person.
 */
import type { FastifyInstance } from 'fastify';
import type { InProcessTransport } from '../../services/account/relying-party.js';

export function inProcessTransport(app: FastifyInstance): InProcessTransport {
  return async (url, init, clientIp) => {
    const target = new URL(url);
    const headers: Record<string, string> = { host: target.host };
    init.headers.forEach((value, name) => {
      headers[name] = value;
    });
    const answer = await app.inject({ method: init.method as 'GET' | 'POST', url: `${target.pathname}${target.search}`, headers, payload: init.body, remoteAddress: clientIp });
    const responseHeaders = new Headers();
    for (const [name, value] of Object.entries(answer.headers)) {
      if (value === undefined) continue;
      for (const v of Array.isArray(value) ? value : [String(value)]) responseHeaders.append(name, v);
    }
    const empty = answer.statusCode === 204 || answer.statusCode === 304;
    return new Response(empty ? null : answer.rawPayload, { status: answer.statusCode, headers: responseHeaders });
  };
}
