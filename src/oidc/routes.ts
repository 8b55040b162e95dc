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

/** The provider's endpoints that answer in OAuth error JSON (RFC 6749 §5.2, RFC 6750 §3), not with pages. */
const OAUTH_JSON_TEMPLATES: ReadonlySet<string> = new Set(['/token', '/token/introspection', '/token/revocation', '/device/auth', '/request', '/backchannel', '/reg', '/reg/:clientId', '/me']);

/**
 * Whether a path (canonical: lower case, no trailing slash) is one of the provider's OAuth endpoints, so that
 * what our own hooks answer before the provider (a rate limit) is in the shape its clients parse.
 */
export function isOAuthEndpoint(issuerPath: string, canonicalPath: string): boolean {
  const mount = issuerPath.toLowerCase();
  const route = providerRouteOf(mount, canonicalPath);
  return route !== undefined && OAUTH_JSON_TEMPLATES.has(route.slice(mount.length));
}
