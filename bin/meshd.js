#!/usr/bin/env node
// The installed entry point runs the compiled CLI; `npm install` builds it (the "prepare" script).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
const main = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
if (!existsSync(main)) {
  console.error('meshd is not built yet: run `npm run build` in the meshd checkout.');
  process.exit(1);
}
await import(main);
