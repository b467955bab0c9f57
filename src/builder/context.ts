import { existsSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { KilnError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import type { Fetch } from './copy/types.js';
import { downloadContext } from './context/download.js';
import { cloneGitContext } from './context/git.js';
import { parseGitFlag } from './context/git-options.js';
import { redactUrl } from './context/redact.js';
import { parseContextSource } from './context/source.js';
import { openTarFile, unpackContext } from './context/tar.js';

/** A build context as a directory on this machine, and how to remove it when kiln made it. */
export interface PreparedContext {
  dir: string;
  dispose(): Promise<void>;
}

export interface ContextExtras {
  /** kaniko's --git values: `branch=B,single-branch=BOOL,recurse-submodules=BOOL,insecure-skip-tls=BOOL`. */
  git?: readonly string[] | string | undefined;
  /** Where GIT_PULL_METHOD, GIT_TOKEN, GIT_USERNAME and GIT_PASSWORD are read; default process.env. */
  env?: NodeJS.ProcessEnv;
  /** How a remote tar context is downloaded; default undici, proxies honoured. */
  fetch?: Fetch;
}

/**
 * kaniko's --context forms (see context/source.ts): a local directory is used where it is;
 * archives are unpacked and git repositories cloned into a scratch directory under `workDir`,
 * which dispose() removes.
 */
export async function prepareContext(context: string, subPath: string | undefined, workDir: string, stdin: Readable, logger: Logger, extras: ContextExtras = {}): Promise<PreparedContext> {
  const env = extras.env ?? process.env;
  const shown = redactUrl(context);
  const gitOptions = parseGitFlag(extras.git);
  const source = parseContextSource(context, env);
  if (source.kind !== 'git' && extras.git !== undefined && extras.git.length > 0) logger.warn(`--git applies to git contexts only; ${shown} is not one, so it is ignored`);
  if (source.kind === 'dir') {
    return { dir: checkedDir(resolve(source.path, subPath ?? ''), shown, resolve(source.path, subPath ?? '')), dispose: async () => undefined };
  }
  const scratch = await mkdtemp(join(workDir, 'kiln-context-'));
  const dispose = () => rm(scratch, { recursive: true, force: true });
  try {
    const root = join(scratch, 'context');
    switch (source.kind) {
      case 'tar-stdin':
        await unpackContext(stdin, root, shown, logger);
        break;
      case 'tar-file':
        await unpackContext(openTarFile(source.path, shown), root, shown, logger);
        break;
      case 'tar-url': {
        // Beside the context directory, never inside it, so it is not part of what is built.
        const file = join(scratch, 'context.tar');
        await downloadContext(source.url, file, shown, logger, extras.fetch);
        await unpackContext(openTarFile(file, shown), root, shown, logger);
        await rm(file, { force: true });
        break;
      }
      case 'git':
        await cloneGitContext(source, gitOptions, root, shown, env, logger);
        break;
    }
    const inside = join(source.kind === 'git' ? (source.subDir ?? '') : '', subPath ?? '');
    // What kiln unpacked or cloned is all the context there is: a sub-path cannot climb out of it.
    if (inside === '..' || inside.startsWith('../') || isAbsolute(inside)) {
      throw new KilnError('USAGE', `--context-sub-path ${subPath} leaves the context ${shown}; name a directory inside it.`);
    }
    return { dir: checkedDir(join(root, inside), shown, inside === '' ? 'its top directory' : inside), dispose };
  } catch (err) {
    await dispose();
    throw err;
  }
}

function checkedDir(dir: string, shown: string, named: string): string {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new KilnError('USAGE', `--context ${shown}: ${named} is not a directory.`);
  }
  return dir;
}
