/**
 * What the personal-token and application pages show of a token or a date: view models, never rows. Dates
 * are shown in UTC with the machine-readable value in `<time datetime>`, so nothing depends on the server's
 * time zone.
 */
import type { TokenView } from '../../services/sessions/model.js';
import { dateView } from '../../views/date.js';

export function tokenModel(token: TokenView) {
  const expiresAt = token.expires_at ? new Date(token.expires_at) : undefined;
  const state = token.is_active ? 'Active' : expiresAt && expiresAt <= new Date() ? 'Expired' : 'Deactivated';
  return {
    id: token.id,
    name: token.name ?? 'Unnamed token',
    scopes: token.scopes,
    created: dateView(token.created_at),
    expires: dateView(token.expires_at),
    lastUsed: dateView(token.last_used_at),
    active: token.is_active,
    state,
  };
}
