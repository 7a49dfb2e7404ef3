#!/usr/bin/env node
// The `dk` command. A published package runs the compiled dist/; a checkout runs the TypeScript
// sources directly (Node >= 22.18 strips types; run through `npm run dk --` to get Node 24).
import { existsSync } from 'node:fs';

const dist = new URL('../dist/cli/main.js', import.meta.url);
await import(existsSync(dist) ? dist.href : new URL('../src/cli/main.ts', import.meta.url).href);
