#!/usr/bin/env node
// Runs the compiled tests with node's own runner. Node 20 does not expand globs after
// --test, so the file list is collected here. Usage: run-tests.mjs [unit|integration] [filter]
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';

const [suite, filter] = process.argv.slice(2);
const roots = suite === 'unit' ? ['dist/test'] : suite === 'integration' ? ['dist/integration'] : ['dist/test', 'dist/integration'];

function collect(dir, out) {
  let names;
  try { names = readdirSync(dir); } catch { return out; }
  for (const name of names.sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) collect(path, out);
    else if (name.endsWith('.test.js') && (!filter || path.includes(filter))) out.push(path);
  }
  return out;
}

const files = roots.flatMap((root) => collect(root, []));
if (files.length === 0) {
  console.error(`no test files found under ${roots.join(', ')}${filter ? ` matching "${filter}"` : ''}; run "npm run build" first`);
  process.exit(1);
}
console.log(`running ${files.length} test files: ${files.map((f) => relative('dist', f)).join(' ')}`);
const result = spawnSync(process.execPath, ['--enable-source-maps', '--test', '--test-reporter=spec', ...files], { stdio: 'inherit' });
process.exit(result.status ?? 1);
