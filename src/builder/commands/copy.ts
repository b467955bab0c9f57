import type { AddInstruction, CopyInstruction, IgnoreMatcher } from '../../dockerfile/index.js';
import type { IgnoreList } from '../../snapshot/ignore.js';
import { copyFiles } from '../copy/index.js';
import { resolveOwner } from '../users.js';
import { atLine } from './located.js';
import type { StepContext, StepOutcome } from './types.js';

/** Where COPY and ADD read from; the executor decides how each source is made available. */
export interface CopySources {
  contextDir: string;
  contextIgnore: IgnoreMatcher | undefined;
  /** The root filesystem of an earlier stage, as its last step left it. */
  stageRoot(index: number): Promise<string>;
  /** An image's root filesystem, extracted on first use (`COPY --from=alpine:3`). */
  imageRoot(ref: string): Promise<string>;
}

/** COPY and ADD: the files go in, then exactly the paths written are snapshotted. */
export async function executeCopy(instruction: CopyInstruction | AddInstruction, ctx: StepContext, sources: CopySources, ignore: IgnoreList, tempDir: string): Promise<StepOutcome> {
  const source = ctx.step.source ?? { kind: 'context' as const };
  const sourceRoot =
    source.kind === 'context' ? sources.contextDir
    : source.kind === 'stage' ? await sources.stageRoot(source.index)
    : await sources.imageRoot(source.ref);
  const owner = instruction.chown ? await resolveOwner(ctx.rootDir, instruction.chown).catch((err: unknown) => { throw atLine(err, ctx.where); }) : undefined;
  const result = await copyFiles({
    where: ctx.where,
    kind: instruction.kind,
    sources: instruction.sources,
    inline: instruction.inline.map((heredoc) => ({ name: heredoc.name, content: heredoc.body })),
    dest: instruction.dest,
    workdir: ctx.config.WorkingDir || '/',
    sourceRoot,
    ...(source.kind === 'context' && sources.contextIgnore ? { sourceIgnore: sources.contextIgnore } : {}),
    rootDir: ctx.rootDir,
    ...(owner ? { owner } : {}),
    ...(instruction.chmod ? { chmod: instruction.chmod } : {}),
    ...(instruction.kind === 'add' && instruction.checksum ? { checksum: instruction.checksum } : {}),
    exclude: instruction.exclude,
    ...(source.kind === 'context' ? {} : { sourceName: source.kind === 'stage' ? `stage ${source.index}` : `image ${source.ref}` }),
    ignore,
    tempDir,
    logger: ctx.logger,
  });
  return { config: ctx.config, effect: { kind: 'paths', paths: result.written } };
}
