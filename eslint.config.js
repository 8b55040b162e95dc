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

const globOf = (prefix) => (prefix.endsWith('/') ? `${prefix}**` : prefix);
const ruleFor = (forbid) =>
  forbid.length === 0
    ? 'off'
    : ['error', { patterns: forbid.map((name) => ({ regex: RESTRICTIONS[name].regex, message: RESTRICTIONS[name].message })) }];

export const flowZones = [
  ...AREAS.map((area) => ({ files: [globOf(area.prefix)], rules: { 'no-restricted-imports': ruleFor(area.forbid) } })),
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
