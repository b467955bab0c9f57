// What a cache answers once an entry has been read, whatever stores it: a probe result for
// a key, or the explanation of a miss. The stores only fetch entries and make layers.
import type { Layer } from '../oci/layer.js';
import type { Descriptor } from '../oci/types.js';
import { describeError } from '../util/errors.js';
import type { CacheEntry } from './entry.js';
import { PARENT_INPUT, diffInputs } from './key.js';
import { expiredReason } from './ttl.js';
import type { KeyInput, ProbeResult, StepKey } from './types.js';

export const NOT_CACHED = 'not in the cache';
export const NO_EARLIER_BUILD = 'no earlier build of this step is cached';

export type LayerMaker = (descriptor: Descriptor, diffId: string) => Layer;

export function probeResultOf(entry: CacheEntry, key: StepKey, ttlMs: number, now: Date, makeLayer: LayerMaker): ProbeResult {
  // The tag is the key's hex, so this only fails when someone wrote the tag by hand.
  if (entry.key !== key.digest) return { kind: 'miss', reason: `the entry under this key's tag is for key ${entry.key}` };
  const expired = expiredReason(entry.created, ttlMs, now);
  if (expired !== undefined) return { kind: 'miss', reason: expired };
  if (entry.result.kind === 'empty') return { kind: 'hit', result: { kind: 'empty' }, created: entry.created };
  const layer = makeLayer(entry.result.descriptor, entry.result.diffId);
  return { kind: 'hit', result: { kind: 'layer', layer }, created: entry.created };
}

/** A miss for an entry that exists but cannot be used. */
export function unreadableEntry(err: unknown): ProbeResult {
  return { kind: 'miss', reason: `the cache entry is unreadable: ${oneLine(describeError(err))}` };
}

/** A miss for a cache that could not be asked at all. */
export function unreachable(err: unknown): ProbeResult {
  return { kind: 'miss', reason: `cache unreachable: ${oneLine(describeError(err))}` };
}

/** Why `key` missed, compared with the last entry cached for its identity. */
export function explainAgainst(previous: CacheEntry, key: StepKey): string {
  if (previous.key === key.digest) return 'no input changed since this step was last cached; its entry has expired or was removed';
  return diffInputs(withParent(previous.inputs, previous.parent), withParent(key.inputs, key.parent));
}

// The parent is compared like an input, unless the step already lists it as one.
function withParent(inputs: readonly KeyInput[], parent: string): KeyInput[] {
  return inputs.some((input) => input.name === PARENT_INPUT) ? [...inputs] : [{ name: PARENT_INPUT, value: parent }, ...inputs];
}

export function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}
