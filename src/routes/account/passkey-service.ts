// TEMPORARY: the shape expected from passkeys-server's service until its checkpoint lands.
import type { RequestContext } from '../../lib/request-context.js';
import type { UserRow } from '../../queries/users.js';

export interface PasskeyView {
  id: string;
  name: string;
  created_at: string;
  last_used_at: string | null;
}
export type PasskeyBinding = { kind: 'session' | 'account' | 'login' | 'interaction' | 'device'; id: string };
export interface PasskeyService {
  registrationOptions(user: UserRow, binding: PasskeyBinding): Promise<object>;
  verifyRegistration(user: UserRow, binding: PasskeyBinding, response: import('@simplewebauthn/server').RegistrationResponseJSON, name: string | undefined, context?: RequestContext): Promise<PasskeyView>;
  list(userId: string): Promise<PasskeyView[]>;
  rename(user: UserRow, id: string, name: string, context?: RequestContext): Promise<PasskeyView>;
}
