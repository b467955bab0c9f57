import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { diffInputs, formatExplain, hashSecret, startKey, stepKey } from '../../src/cache/key.js';
import type { KeyInput } from '../../src/cache/types.js';

const PARENT = startKey([{ name: 'base image', value: 'sha256:' + 'a'.repeat(64) }, { name: 'platform', value: 'linux/amd64' }]);
const INPUTS: KeyInput[] = [
  { name: 'instruction', value: 'RUN make' },
  { name: 'build arg VERSION', value: hashSecret('1.0') },
  { name: 'env PATH', value: '/usr/bin:/bin' },
];

test('equal parent and inputs give equal digests, whatever the identity and label', () => {
  const a = stepKey(PARENT, INPUTS, 'Dockerfile/0/1', 'Dockerfile:3 RUN make');
  const b = stepKey(PARENT, INPUTS.map((input) => ({ ...input })), 'other/identity', 'another label');
  assert.equal(a.digest, b.digest);
  assert.match(a.digest, /^sha256:[a-f0-9]{64}$/);
});

test('the digest is a stable function of the canonical encoding', () => {
  // Recomputed independently: any change to the encoding must be deliberate (and bump its version).
  const expected = 'sha256:' + createHash('sha256').update(JSON.stringify(['kiln step key v1', PARENT, INPUTS.map((i) => [i.name, i.value])])).digest('hex');
  assert.equal(stepKey(PARENT, INPUTS, 'x', 'y').digest, expected);
});

test('changing any input value, name, the order, or the parent changes the digest', () => {
  const base = stepKey(PARENT, INPUTS, 'id', 'label').digest;
  const variants: [string, string, KeyInput[]][] = [
    ['value', PARENT, INPUTS.map((input, i) => (i === 1 ? { ...input, value: hashSecret('1.1') } : input))],
    ['name', PARENT, INPUTS.map((input, i) => (i === 2 ? { ...input, name: 'env PATH2' } : input))],
    ['order', PARENT, [INPUTS[1]!, INPUTS[0]!, INPUTS[2]!]],
    ['added', PARENT, [...INPUTS, { name: 'env HOME', value: '/root' }]],
    ['removed', PARENT, INPUTS.slice(0, 2)],
    ['parent', startKey([{ name: 'base image', value: 'sha256:' + 'b'.repeat(64) }]), INPUTS],
  ];
  const seen = new Set([base]);
  for (const [what, parent, inputs] of variants) {
    const digest = stepKey(parent, inputs, 'id', 'label').digest;
    assert.ok(!seen.has(digest), `${what} change must change the digest`);
    seen.add(digest);
  }
});

test('names and values cannot be shifted into one another', () => {
  const a = stepKey(PARENT, [{ name: 'a', value: 'bc' }], 'id', 'l').digest;
  const b = stepKey(PARENT, [{ name: 'ab', value: 'c' }], 'id', 'l').digest;
  assert.notEqual(a, b);
});

test('a start key differs from a step key with the same inputs', () => {
  const inputs = [{ name: 'base image', value: 'sha256:' + 'c'.repeat(64) }];
  assert.notEqual(startKey(inputs), stepKey('', inputs, 'id', 'l').digest);
  assert.equal(startKey(inputs), startKey([...inputs]));
});

test('hashSecret hides the value and is deterministic', () => {
  const hashed = hashSecret('hunter2');
  assert.match(hashed, /^sha256:[a-f0-9]{64}$/);
  assert.ok(!hashed.includes('hunter2'));
  assert.equal(hashed, hashSecret('hunter2'));
  assert.notEqual(hashed, hashSecret('hunter3'));
});

test('stepKey copies and freezes its inputs', () => {
  const inputs = INPUTS.map((input) => ({ ...input }));
  const key = stepKey(PARENT, inputs, 'id', 'l');
  inputs[0]!.value = 'RUN something else';
  assert.equal(key.inputs[0]!.value, 'RUN make');
  assert.ok(Object.isFrozen(key) && Object.isFrozen(key.inputs));
});

test('formatExplain lists label, digest, parent and every input', () => {
  const key = stepKey(PARENT, INPUTS, 'id', 'Dockerfile:3 RUN make');
  const text = formatExplain(key);
  const lines = text.split('\n');
  assert.equal(lines[0], 'Dockerfile:3 RUN make');
  assert.ok(lines.some((line) => line.includes(key.digest)));
  assert.ok(lines.some((line) => line.includes(`parent: ${PARENT}`)));
  for (const input of INPUTS) assert.ok(lines.some((line) => line.includes(`${input.name}: ${input.value}`)), input.name);
  assert.equal(lines.length, 3 + INPUTS.length);
});

test('diffInputs names a changed build arg', () => {
  const now = INPUTS.map((input) => (input.name === 'build arg VERSION' ? { ...input, value: hashSecret('2.0') } : input));
  assert.equal(diffInputs(INPUTS, now), 'build arg VERSION changed');
});

test('diffInputs quotes the old instruction', () => {
  const now = [{ name: 'instruction', value: 'RUN make all' }, ...INPUTS.slice(1)];
  assert.equal(diffInputs(INPUTS, now), 'instruction changed: was `RUN make`');
});

test('diffInputs shortens a long or multi-line instruction to one line', () => {
  const long = 'RUN ' + 'x'.repeat(200) + '\n  && echo done';
  const message = diffInputs([{ name: 'instruction', value: long }], [{ name: 'instruction', value: 'RUN true' }]);
  assert.ok(!message.includes('\n'));
  assert.ok(message.length < 120, message);
  assert.ok(message.endsWith('…`'));
});

test('diffInputs names added and removed inputs', () => {
  const now = [...INPUTS.filter((input) => input.name !== 'env PATH'), { name: 'source src/', value: 'sha256:' + '1'.repeat(64) }];
  assert.equal(diffInputs(INPUTS, now), 'source src/ added, env PATH removed');
});

test('diffInputs says an earlier step changed when only the parent differs', () => {
  const before = [{ name: 'parent', value: 'sha256:' + '1'.repeat(64) }, ...INPUTS];
  const after = [{ name: 'parent', value: 'sha256:' + '2'.repeat(64) }, ...INPUTS];
  assert.equal(diffInputs(before, after), 'parent changed: an earlier step changed');
  const alsoArg = [after[0]!, ...INPUTS.map((input) => (input.name === 'env PATH' ? { ...input, value: '/bin' } : input))];
  assert.equal(diffInputs(before, alsoArg), 'env PATH changed; an earlier step changed too');
});

test('diffInputs counts what it does not name', () => {
  const before = ['A', 'B', 'C', 'D', 'E'].map((n) => ({ name: `build arg ${n}`, value: '1' }));
  const after = before.map((input) => ({ ...input, value: '2' }));
  assert.equal(diffInputs(before, after), 'build arg A changed, build arg B changed, build arg C changed, and 2 more');
});

test('diffInputs compares repeated names as a list and notices reordering', () => {
  const before = [{ name: 'source', value: 'a' }, { name: 'source', value: 'b' }];
  assert.equal(diffInputs(before, [{ name: 'source', value: 'a' }, { name: 'source', value: 'c' }]), 'source changed');
  assert.equal(diffInputs(INPUTS, [INPUTS[2]!, INPUTS[0]!, INPUTS[1]!]), 'the same inputs in another order');
  assert.equal(diffInputs(INPUTS, INPUTS), 'no input changed');
});
