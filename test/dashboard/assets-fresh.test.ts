import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { dashboardModule, OUT } from '../../packaging/dashboard.ts';

test('the committed dashboard bundle is what `npm run build:dashboard` makes from web/dashboard/', async () => {
  const { text, sizes } = await dashboardModule();
  assert.ok(text === readFileSync(OUT, 'utf8'), 'src/gateway/dashboard/assets.gen.ts is stale: run npm run build:dashboard and commit it');
  // The stated bound (docs/dashboard.md): the page's script stays small.
  assert.ok(sizes['app.js']! < 64 * 1024, `app.js is ${sizes['app.js']} bytes`);
});
