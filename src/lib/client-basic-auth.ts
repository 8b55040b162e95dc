/**
 * The client id and secret of an HTTP Basic `Authorization` header as an OAuth server reads them:
 * RFC 6749 §2.3.1 has both parts form-urlencoded before they are joined, so `+` is a space and `%XX` an
 * octet (oidc-provider decodes them the same way). Undefined when the header is not well-formed Basic.
 */
export function basicClientCredentials(header: string | undefined): { id: string; secret: string } | undefined {
  const match = header ? /^Basic ([A-Za-z0-9+/=]+)$/i.exec(header) : null;
  if (!match?.[1]) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  const formDecode = (part: string) => decodeURIComponent(part.replace(/\+/g, ' '));
  try {
    return { id: formDecode(decoded.slice(0, colon)), secret: formDecode(decoded.slice(colon + 1)) };
  } catch {
    return undefined;
  }
}
