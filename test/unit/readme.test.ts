/** The README stays true: every configuration variable is in its table, and the two sacred commands are shown. */
import { readFileSync } from 'node:fs';
import t from 'tap';
import { describeConfig } from '../../src/config/index.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

t.test('README documents every configuration variable', async (t) => {
  for (const { name } of describeConfig()) t.match(readme, new RegExp(`\\| \`${name}\` \\|`), `${name} is in the table`);
});

t.test('README shows the quick start and the test command', async (t) => {
  t.match(readme, /npm ci && npm start/);
  t.match(readme, /npm test/);
});
