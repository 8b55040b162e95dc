/**
 * The path templates oidc-provider serves under the issuer (its default `routes` and their sub-paths), so a
 * request the provider handled can be named by its route rather than by its raw URL (which holds uids,
 * user codes and client ids).
 */
const TEMPLATES = [
  '/.well-known/openid-configuration',
  '/auth',
  '/auth/:uid',
  '/token',
  '/token/introspection',
  '/token/revocation',
  '/me',
  '/jwks',
  '/request',
  '/reg',
  '/reg/:clientId',
  '/session/end',
  '/session/end/confirm',
  '/session/end/success',
  '/device',
  '/device/auth',
  '/device/confirm',
  '/device/success',
  '/device/:userCode',
  '/backchannel',
  '/challenge',
] as const;

const matchers = TEMPLATES.map((template) => ({
  template,
  pattern: new RegExp(`^${template.replace(/\./g, '\\.').replace(/:[A-Za-z]+/g, '[^/]+')}/?$`),
}));

/** `/oidc/token` for `/oidc/token?x=1`; `${issuerPath}/*` for a path under the issuer the provider does not serve. */
export function providerRouteOf(issuerPath: string, url: string): string | undefined {
  const path = url.split('?', 1)[0] ?? '';
  if (issuerPath && path !== issuerPath && !path.startsWith(`${issuerPath}/`)) return undefined;
  const rest = path.slice(issuerPath.length);
  // Exact templates first, so `/device/auth` is not read as `/device/:userCode`.
  const exact = matchers.find((m) => !m.template.includes(':') && m.pattern.test(rest)) ?? matchers.find((m) => m.pattern.test(rest));
  if (exact) return `${issuerPath}${exact.template}`;
  return issuerPath ? `${issuerPath}/*` : undefined;
}
