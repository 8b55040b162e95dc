/**
 * What the personal-token and application pages show of a token or a date: view models, never rows. Dates
 * are shown in UTC with the machine-readable value in `<time datetime>`, so nothing depends on the server's
 * time zone.
 */
import type { TokenView } from '../../services/sessions/model.js';

export interface DateView {
  iso: string;
  text: string;
}

/** A moment for a page: "2026-12-03 14:05 UTC". */
export function dateView(value: Date | string | null): DateView | undefined {
  if (value === null) return undefined;
  const iso = new Date(value).toISOString();
  return { iso, text: `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC` };
}

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
