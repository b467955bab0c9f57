import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DISCARDED_PREFIX, discardTree } from '../../src/util/discard.js';

test('a discarded tree leaves its place at once and is deleted in the background', async () => {
  const holding = mkdtempSync(join(tmpdir(), 'kiln-discard-'));
  try {
    const tree = join(holding, 'work', 'root');
    for (let d = 0; d < 20; d++) {
      mkdirSync(join(tree, `d${d}`), { recursive: true });
      for (let f = 0; f < 20; f++) writeFileSync(join(tree, `d${d}`, `f${f}`), 'x');
    }
    discardTree(tree, holding);
    assert.equal(existsSync(tree), false, 'the tree is gone from where it was');
    const left = () => readdirSync(holding).filter((name) => name.startsWith(DISCARDED_PREFIX));
    for (let waited = 0; left().length > 0 && waited < 20_000; waited += 50) await sleep(50);
    assert.deepEqual(left(), [], 'the deleter removed the tree');
    assert.deepEqual(readdirSync(holding), ['work'], 'nothing else was touched');
    // A tree that is already gone is no error.
    discardTree(tree, holding);
  } finally {
    rmSync(holding, { recursive: true, force: true });
  }
});
