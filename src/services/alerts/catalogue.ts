/**
 * The closed catalogue of alerts: a stable name (the webhook `type`) and a severity each. Receivers route on
 * these names, so they never change meaning; new alerts are appended.
 */
export const alertCatalogue = {
  account_locked: { severity: 'medium', title: 'A sign-in identifier was locked after repeated failed logins' },
  token_reuse_detected: { severity: 'high', title: 'A used refresh token or authorization code was presented again' },
  compromise_reported: { severity: 'high', title: 'A user reported a sign-in as "This wasn\'t me"' },
  mfa_reset_by_admin: { severity: 'medium', title: 'An administrator removed every second factor of a user' },
  privilege_granted: { severity: 'high', title: 'Someone gained an auth.* permission' },
  credential_stuffing: { severity: 'high', title: 'Many failed logins for many identifiers from one network' },
  rate_limit_exceeded: { severity: 'low', title: 'A request rate limit was exceeded' },
  audit_tampering: { severity: 'critical', title: 'The audit log failed verification' },
  compliance_failed: { severity: 'medium', title: 'A compliance check failed' },
  signing_key_overdue: { severity: 'medium', title: 'The signing key in use is older than the rotation policy' },
  audit_digest: { severity: 'low', title: 'Daily audit digest: the newest audit seal, for a copy outside the database' },
  passkey_clone_suspected: { severity: 'high', title: 'A passkey\'s signature counter went backwards (a cloned authenticator?)' },
} as const;

export type AlertType = keyof typeof alertCatalogue;
export type AlertSeverity = (typeof alertCatalogue)[AlertType]['severity'];

/** An alert about to be raised; `windowSeconds` aggregates: no second alert for the same group within it. */
export interface AlertCandidate {
  type: AlertType;
  groupKey: string;
  dedupeKey: string;
  summary: string;
  details: Record<string, unknown>;
  eventIds: string[];
  windowSeconds?: number | undefined;
}
