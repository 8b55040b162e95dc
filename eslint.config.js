// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * The direction of flow: routes → services → queries, with the database, the provider and Fastify each kept in
 * their own layer. Each restriction names the import sources it forbids (regular expressions on the specifier as
 * written, so relative paths match too) and where they stay allowed. `import type` counts as well: a type import
 * still ties one layer's shape to another's.
 */
const RESTRICTIONS = {
  database: {
    regex: '^drizzle-orm(/|$)|(^|/)db/schema(/|\\.js$|$)',
    message: 'drizzle-orm and the schema belong to src/db, src/queries, the oidc adapter and jobs: call a query module instead.',
  },
  provider: {
    regex: '^oidc-provider(/|$)|(^|/)oidc/',
    message: 'oidc-provider and src/oidc belong to src/oidc, the interaction routes and app.ts: reach the provider through them.',
  },
  queries: {
    regex: '(^|/)queries/',
    message: 'Routes never call queries: go through a service (routes → services → queries).',
  },
  fastify: {
    regex: '^(fastify|fastify-plugin|fastify-type-provider-zod)(/|$)|^@fastify/',
    message: 'Services, queries, lib and jobs stay framework-free: Fastify belongs to app.ts, plugins and routes.',
  },
};

/**
 * Areas of src/, general first: the last area whose prefix matches a file decides (flat config lets a later
 * object replace an earlier one's rule options).
 */
const AREAS = [
  { prefix: 'src/', forbid: ['database', 'provider'] },
  { prefix: 'src/db/', forbid: ['provider'] },
  { prefix: 'src/queries/', forbid: ['provider', 'fastify'] },
  { prefix: 'src/jobs/', forbid: ['provider', 'fastify'] },
  { prefix: 'src/services/', forbid: ['database', 'provider', 'fastify'] },
  { prefix: 'src/lib/', forbid: ['database', 'provider', 'fastify'] },
  { prefix: 'src/routes/', forbid: ['database', 'provider', 'queries'] },
  { prefix: 'src/routes/interaction/', forbid: ['database', 'queries'] },
  { prefix: 'src/oidc/', forbid: ['database'] },
  { prefix: 'src/oidc/adapter.ts', forbid: [] },
  { prefix: 'src/app.ts', forbid: ['database'] },
  // The CLI is the second composition root (it registers clients with no server running), so like app.ts it
  // hands the services the provider's part of client registration.
  { prefix: 'src/cli.ts', forbid: ['database'] },
];

/**
 * TEMPORARY: files that still break a zone because another helper is moving their code (issue 11, wave 1).
 * One entry per file, naming what it may still import and who removes the entry; the lead deletes entries as
 * the branches land. Do not add to this list: move the code instead.
 */
const pendingMoves = [
  { file: 'src/routes/api/mfa.ts', allow: ['queries'], owner: 'login', why: 'type UserRow from queries/users: a service type instead' },
  { file: 'src/routes/interaction/index.ts', allow: ['queries'], owner: 'pages', why: 'type UserRow from queries/users: a service type instead' },
  { file: 'src/services/container.ts', allow: ['database'], owner: 'rbac', why: 'pg_notify: the one helper in db/client.ts' },
  { file: 'src/services/rbac/bootstrap.ts', allow: ['database'], owner: 'rbac', why: 'built-in role and grant writes: one write path in queries' },
  { file: 'src/services/rbac/effective.ts', allow: ['database'], owner: 'rbac', why: 'the effective-permissions CTE: into queries/rbac.ts' },
  { file: 'src/services/rbac/service.ts', allow: ['database'], owner: 'rbac', why: 'raw SQL in the service: into queries/rbac.ts' },
  { file: 'src/services/login.ts', allow: ['database'], owner: 'login', why: 'type DeviceInfo: import it from lib/device.ts' },
  { file: 'src/services/mfa/factors.ts', allow: ['database'], owner: 'login', why: 'type FactorType from the schema: a queries/mfa.ts type instead' },
  { file: 'src/services/mfa/notices.ts', allow: ['database'], owner: 'login', why: 'type DeviceInfo: import it from lib/device.ts' },
  { file: 'src/services/sessions.ts', allow: ['database'], owner: 'sessions', why: 'type DeviceInfo: import it from lib/device.ts' },
];

const areaOf = (file) => AREAS.filter((area) => file.startsWith(area.prefix)).at(-1);
const globOf = (prefix) => (prefix.endsWith('/') ? `${prefix}**` : prefix);
const ruleFor = (forbid) =>
  forbid.length === 0
    ? 'off'
    : ['error', { patterns: forbid.map((name) => ({ regex: RESTRICTIONS[name].regex, message: RESTRICTIONS[name].message })) }];

export const flowZones = [
  ...AREAS.map((area) => ({ files: [globOf(area.prefix)], rules: { 'no-restricted-imports': ruleFor(area.forbid) } })),
  ...pendingMoves.map((entry) => ({
    files: [entry.file],
    rules: { 'no-restricted-imports': ruleFor(areaOf(entry.file).forbid.filter((name) => !entry.allow.includes(name))) },
  })),
];

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'data/', '.tap/', 'coverage/', 'drizzle/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly', Buffer: 'readonly', fetch: 'readonly' } },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
      'no-restricted-properties': ['error', { object: 'process', property: 'env', message: 'Read configuration through src/config (the only reader of process.env).' }],
    },
  },
  {
    // Entry points and tooling hand the environment to the config schema or to child processes.
    files: ['src/server.ts', 'src/cli.ts', 'test/**', 'bench/**', 'config/**', 'bin/**'],
    rules: { 'no-restricted-properties': 'off' },
  },
  ...flowZones,
);
