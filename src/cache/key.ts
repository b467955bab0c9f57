import { sha256 } from '../oci/digest.js';
import type { KeyInput, StepKey } from './types.js';

// Bump when the encoding changes: every key changes with it, so old entries simply miss.
const STEP_KEY_DOMAIN = 'kiln step key v1';
const START_KEY_DOMAIN = 'kiln stage start v1';

/** The input name that stands for the key a step chains from, in explanations and diffs. */
export const PARENT_INPUT = 'parent';

/** How many differences a one-line explanation names before it says "and N more". */
const MAX_NAMED_CHANGES = 3;
const MAX_QUOTED_INSTRUCTION = 80;

/**
 * A step's key. The digest covers only the parent key and the ordered inputs, encoded as
 * JSON arrays of strings, so it is the same on every machine and for every user; identity
 * and label are carried along for messages and never enter the digest.
 */
export function stepKey(parent: string, inputs: readonly KeyInput[], identity: string, label: string): StepKey {
  const copied = Object.freeze(inputs.map(({ name, value }) => Object.freeze({ name, value })));
  return Object.freeze({
    digest: sha256(canonical(STEP_KEY_DOMAIN, parent, copied)),
    parent,
    inputs: copied,
    identity,
    label,
  });
}

/**
 * The key a stage's first step chains from: the base image's digest and platform, or the
 * final key of the earlier stage it is built on.
 */
export function startKey(inputs: readonly KeyInput[]): string {
  return sha256(canonical(START_KEY_DOMAIN, '', inputs));
}

/**
 * A value that may be secret (a build arg), as it may enter a key: keys and their inputs are
 * stored in the cache repository, which other people can read.
 */
export function hashSecret(value: string): string {
  return sha256(value);
}

function canonical(domain: string, parent: string, inputs: readonly KeyInput[]): string {
  return JSON.stringify([domain, parent, inputs.map(({ name, value }) => [name, value])]);
}

/** What `--cache-explain` prints for one step: its label, key, parent and every input. */
export function formatExplain(key: StepKey): string {
  const lines = [key.label, `  key: ${key.digest}`, `  parent: ${key.parent}`];
  for (const input of key.inputs) lines.push(`  ${input.name}: ${oneLine(input.value)}`);
  return lines.join('\n');
}

/**
 * One line naming what differs between the inputs a step had when it was last cached and its
 * inputs now: "build arg VERSION changed", "instruction changed: was `RUN make`". An input
 * named "parent" is the key the step chained from; when only that differs, the step itself is
 * unchanged and an earlier step is what changed.
 */
export function diffInputs(previous: readonly KeyInput[], current: readonly KeyInput[]): string {
  const before = groupByName(previous);
  const after = groupByName(current);
  const parentChanged = !sameValues(before.get(PARENT_INPUT), after.get(PARENT_INPUT));
  const changes: string[] = [];
  for (const [name, values] of after) {
    if (name === PARENT_INPUT) continue;
    const old = before.get(name);
    if (old === undefined) changes.push(`${name} added`);
    else if (!sameValues(old, values)) changes.push(describeChange(name, old));
  }
  for (const name of before.keys()) {
    if (name !== PARENT_INPUT && !after.has(name)) changes.push(`${name} removed`);
  }

  if (changes.length === 0) {
    if (parentChanged) return 'parent changed: an earlier step changed';
    if (!sameOrder(previous, current)) return 'the same inputs in another order';
    return 'no input changed';
  }
  const named = changes.slice(0, MAX_NAMED_CHANGES).join(', ');
  const more = changes.length > MAX_NAMED_CHANGES ? `, and ${changes.length - MAX_NAMED_CHANGES} more` : '';
  return `${named}${more}${parentChanged ? '; an earlier step changed too' : ''}`;
}

function describeChange(name: string, old: readonly string[]): string {
  // The old text of an instruction says more than "changed": the user sees what it was.
  if (name === 'instruction' && old.length === 1) return `instruction changed: was \`${quote(old[0]!)}\``;
  return `${name} changed`;
}

// Names may repeat (two sources under one label); their values are compared as a list.
function groupByName(inputs: readonly KeyInput[]): Map<string, string[]> {
  const groups = new Map<string, string[]>();
  for (const { name, value } of inputs) {
    const values = groups.get(name);
    if (values) values.push(value);
    else groups.set(name, [value]);
  }
  return groups;
}

function sameValues(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.length === b.length && a.every((value, i) => value === b[i]);
}

function sameOrder(a: readonly KeyInput[], b: readonly KeyInput[]): boolean {
  return a.length === b.length && a.every((input, i) => input.name === b[i]!.name && input.value === b[i]!.value);
}

function quote(text: string): string {
  const flat = oneLine(text);
  return flat.length > MAX_QUOTED_INSTRUCTION ? `${flat.slice(0, MAX_QUOTED_INSTRUCTION - 1)}…` : flat;
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ⏎ ');
}
