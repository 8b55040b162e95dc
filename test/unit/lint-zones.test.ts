/**
 * The direction of flow is enforced by ESLint zones (eslint.config.js): this checks the zones are in force by
 * linting small fixtures at paths in each layer, without touching the files themselves.
 */
import t from 'tap';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';

const root = fileURLToPath(new URL('../..', import.meta.url));
const eslint = new ESLint({ cwd: root });

/** The restricted-import messages ESLint gives `code` as if it were the file at `path`. */
async function restrictedImports(path: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: `${root}/${path}` });
  return (result?.messages ?? []).filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

t.test('routes, services and lib never reach the database directly', async (t) => {
  t.equal((await restrictedImports('src/routes/api/fixture.ts', "import { sql } from 'drizzle-orm';\nexport const q = sql`select 1`;\n")).length, 1, 'drizzle-orm in a route');
  t.equal((await restrictedImports('src/routes/api/fixture.ts', "import type { users } from '../../db/schema/index.js';\nexport type U = typeof users;\n")).length, 1, 'a type-only schema import counts');
  t.equal((await restrictedImports('src/services/fixture.ts', "import { sql } from 'drizzle-orm';\nexport const q = sql`select 1`;\n")).length, 1, 'drizzle-orm in a service');
  t.same(await restrictedImports('src/queries/fixture.ts', "import { sql } from 'drizzle-orm';\nexport const q = sql`select 1`;\n"), [], 'allowed in queries');
  t.same(await restrictedImports('src/oidc/adapter.ts', "import { sql } from 'drizzle-orm';\nexport const q = sql`select 1`;\n"), [], 'allowed in the oidc adapter');
});

t.test('only src/oidc, the interaction routes and the composition roots touch the provider', async (t) => {
  t.equal((await restrictedImports('src/services/fixture.ts', "import Provider from 'oidc-provider';\nexport const P = Provider;\n")).length, 1);
  t.equal((await restrictedImports('src/routes/api/fixture.ts', "import { buildProvider } from '../../oidc/provider.js';\nexport const b = buildProvider;\n")).length, 1);
  t.same(await restrictedImports('src/routes/interaction/fixture.ts', "import { errors } from 'oidc-provider';\nexport const e = errors;\n"), []);
  t.same(await restrictedImports('src/app.ts', "import { buildProvider } from './oidc/provider.js';\nexport const b = buildProvider;\n"), []);
});

t.test('routes never call queries; services, queries, lib and jobs never import Fastify', async (t) => {
  t.equal((await restrictedImports('src/routes/fixture.ts', "import { createUserQueries } from '../queries/users.js';\nexport const c = createUserQueries;\n")).length, 1);
  for (const layer of ['services', 'queries', 'lib', 'jobs']) {
    t.equal((await restrictedImports(`src/${layer}/fixture.ts`, "import type { FastifyInstance } from 'fastify';\nexport type F = FastifyInstance;\n")).length, 1, layer);
  }
  t.same(await restrictedImports('src/plugins/fixture.ts', "import type { FastifyInstance } from 'fastify';\nexport type F = FastifyInstance;\n"), []);
});
