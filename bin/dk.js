#!/usr/bin/env -S node --single-threaded-gc --max-semi-space-size=2
// The `dk` command. A published package runs the compiled dist/; a checkout runs the TypeScript
// sources directly (Node >= 22.18 strips types; run through `npm run dk --` to get Node 24).
// --single-threaded-gc: V8's helper GC threads compete with the data path for the cores; on a
// 2-core host, one thread doing all GC moved 9-12% more bytes through the tunnel.
// --max-semi-space-size=2: socket buffers die young, and a small young generation frees them in
// cheap scavenges instead of letting their memory pile up until a full mark-compact
// (docs/performance.md, "What moved the numbers").
import { existsSync } from 'node:fs';

const dist = new URL('../dist/cli/main.js', import.meta.url);
await import(existsSync(dist) ? dist.href : new URL('../src/cli/main.ts', import.meta.url).href);
