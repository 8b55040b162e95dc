#!/usr/bin/env node
// The `keryu` command. `npm ci` builds dist/ (the prepare script); this only hands over to it.
import { runCli } from '../dist/cli.js';

const code = await runCli(process.argv.slice(2), { env: process.env, stdin: process.stdin, stdout: process.stdout, stderr: process.stderr });
process.exit(code);
