export * from './audit.js';
export * from './clients.js';
export * from './keys.js';
export * from './oidc.js';
export * from './users.js';
export * from './rbac.js';
export * from './auth.js';
export * from './mfa.js';
