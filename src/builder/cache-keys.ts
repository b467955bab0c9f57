// What enters a step's cache key, and what does not:
// - the parent key: the previous step's, or the stage's start (base image digest, or the
//   earlier stage's final key, plus the layer format), so any change up the chain changes
//   every key after it; ENV, USER, WORKDIR and SHELL enter through their own steps;
// - the instruction as written;
// - the value of each build arg the instruction's text refers to ($NAME, ${NAME}), hashed.
//   A build arg that no instruction refers to never enters a key, so a per-build value such
//   as a commit SHA does not cost cache hits. A RUN still gets every ARG in scope in its
//   environment; a script that reads an ARG without the RUN line naming it will reuse a layer
//   built with another value: name the ARG in the RUN line (`RUN GIT_SHA=$GIT_SHA ./build`);
// - COPY and ADD: the content of their sources after .dockerignore (xxhash of each file,
//   mode, size, symlink targets; never mtimes or paths on this machine), grouped by the
//   top-level entry they sit under; `--from` a stage: that stage's final key; `--from` an
//   image: its digest.
// ADD of a URL without --checksum is never served from the cache: its content is unknown
// until it is fetched.
import { referencedArgs, type StageStep } from '../dockerfile/index.js';
import { sha256 } from '../oci/digest.js';
import { hashSecret, startKey, stepKey } from '../cache/key.js';
import type { KeyInput, StepKey } from '../cache/types.js';
import { describeSources, type SourceDigestInput } from './copy/index.js';
import type { CopySources } from './commands/copy.js';

/** A step's key, and whether the cache may answer for it at all. */
export interface PlannedKey {
  key: StepKey;
  /** Why the cache never answers for this step; undefined when it may. */
  uncacheable?: string;
}

export interface KeyContext {
  dockerfileName: string;
  stageLabel: string;
  sources: CopySources;
  /** Final keys of the stages built before this one. */
  stageKeys: ReadonlyMap<number, string>;
  /** The digest `COPY --from=<image>` resolves to. */
  imageDigest(ref: string): Promise<string>;
}

export type StageStart =
  | { kind: 'image'; digest: string }
  | { kind: 'scratch'; platform: string }
  | { kind: 'stage'; key: string };

/** The key a stage's first step chains from. Layers differ by format, so the format is part of it. */
export function stageStartKey(start: StageStart, layerFormat: string): string {
  const base: KeyInput =
    start.kind === 'image' ? { name: 'base image', value: start.digest }
    : start.kind === 'scratch' ? { name: 'base image', value: `scratch ${start.platform}` }
    : { name: 'base stage', value: start.key };
  return startKey([base, { name: 'layer format', value: layerFormat }]);
}

/** Every step's key, in order, each chained to the one before. */
export async function stageKeys(steps: readonly StageStep[], start: string, ctx: KeyContext): Promise<PlannedKey[]> {
  const keys: PlannedKey[] = [];
  let parent = start;
  for (const [number, step] of steps.entries()) {
    const { inputs, uncacheable } = await stepInputs(step, ctx);
    const label = `${ctx.dockerfileName}:${step.instruction.line} ${oneLine(step.instruction.original)}`;
    const identity = `${ctx.dockerfileName} ${ctx.stageLabel} step ${number + 1}`;
    const key = stepKey(parent, inputs, identity, label);
    keys.push(uncacheable ? { key, uncacheable } : { key });
    parent = key.digest;
  }
  return keys;
}

async function stepInputs(step: StageStep, ctx: KeyContext): Promise<{ inputs: KeyInput[]; uncacheable?: string }> {
  const inputs: KeyInput[] = [{ name: 'instruction', value: step.instruction.original }];
  for (const name of [...referencedArgs(step.instruction)].sort()) {
    // ENV wins over ARG in expansion, and ENV is already in the chain.
    const value = step.args.get(name);
    if (value !== undefined && !step.env.has(name)) inputs.push({ name: `build arg ${name}`, value: hashSecret(value) });
  }
  const instruction = step.expanded;
  if (instruction.kind !== 'copy' && instruction.kind !== 'add') return { inputs };
  const source = step.source ?? { kind: 'context' as const };
  if (source.kind === 'stage') {
    const key = ctx.stageKeys.get(source.index);
    if (key === undefined) throw new Error(`stage ${source.index} has no key`);
    inputs.push({ name: `from stage ${source.index}`, value: key });
    return { inputs };
  }
  if (source.kind === 'image') {
    inputs.push({ name: `from image ${source.ref}`, value: await ctx.imageDigest(source.ref) });
    return { inputs };
  }
  const described = await describeSources({
    where: `${ctx.dockerfileName}:${step.instruction.line}`,
    kind: instruction.kind,
    sources: instruction.sources,
    inline: instruction.inline.map((heredoc) => ({ name: heredoc.name, content: heredoc.body })),
    dest: instruction.dest,
    workdir: '/',
    sourceRoot: ctx.sources.contextDir,
    ...(ctx.sources.contextIgnore ? { sourceIgnore: ctx.sources.contextIgnore } : {}),
    rootDir: '',
    ...(instruction.chmod ? { chmod: instruction.chmod } : {}),
    ...(instruction.kind === 'add' && instruction.checksum ? { checksum: instruction.checksum } : {}),
    exclude: instruction.exclude,
  });
  inputs.push(...sourceInputs(described));
  const unpinned = described.find((entry) => entry.kind === 'url' && entry.contentHash === '');
  return unpinned ? { inputs, uncacheable: `ADD ${unpinned.path} has no --checksum, so it is always fetched` } : { inputs };
}

/** One input per top-level source entry, so a miss can say which part of the context changed. */
function sourceInputs(entries: readonly SourceDigestInput[]): KeyInput[] {
  const groups = new Map<string, SourceDigestInput[]>();
  for (const entry of entries) {
    const top = entry.kind === 'url' || entry.path.startsWith('<<') ? entry.path : entry.path.split('/')[0] || '.';
    const group = groups.get(top);
    if (group) group.push(entry);
    else groups.set(top, [entry]);
  }
  return [...groups].map(([top, group]) => ({
    name: `source ${top}`,
    value: sha256(JSON.stringify(group.map((e) => [e.path, e.kind, e.mode, e.size, e.contentHash]))),
  }));
}

function oneLine(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 70 ? `${flat.slice(0, 69)}…` : flat;
}
