/**
 * Logger options for Fastify's pino. Credentials never reach the log: headers that carry them are
 * redacted, and URL query values that can be secrets (codes, tokens, hints) are masked.
 */
import type { FastifyRequest, FastifyServerOptions } from 'fastify';

export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["dpop"]',
  'res.headers["set-cookie"]',
  '*.password',
  '*.new_password',
  '*.current_password',
  '*.client_secret',
  '*.access_token',
  '*.refresh_token',
  '*.id_token',
  '*.code',
  '*.token',
  '*.secret',
  'password',
  'client_secret',
  'secret',
];

const SECRET_PARAM = /^(code|token|access_token|refresh_token|id_token|id_token_hint|client_secret|password|user_code|device_code|client_assertion|code_verifier|logout_hint|login_hint|state|nonce)$/i;

export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q === -1) return url;
  const params = new URLSearchParams(url.slice(q + 1));
  let changed = false;
  for (const key of [...params.keys()]) {
    if (SECRET_PARAM.test(key)) {
      params.set(key, '[redacted]');
      changed = true;
    }
  }
  return changed ? `${url.slice(0, q)}?${params.toString()}` : url;
}

export function loggerOptions(level: string): NonNullable<FastifyServerOptions['logger']> {
  return {
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    serializers: {
      req(req: FastifyRequest) {
        return { method: req.method, url: redactUrl(req.url), host: req.host, remoteAddress: req.ip };
      },
    },
  };
}
