import { statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { KilnError } from '../../src/util/errors.js';

/**
 * Where --dockerfile points, by kaniko's rule: the path as given (relative to the working
 * directory) when that file exists, else the same path inside the build context. Tekton's
 * kaniko task relies on the first (its DOCKERFILE is relative to the workspace, not to
 * CONTEXT); a bare `Dockerfile` usually resolves by the second.
 */
export function resolveDockerfilePath(dockerfile: string, contextDir: string, cwd: string = process.cwd()): string {
  if (/^https?:\/\//i.test(dockerfile)) {
    throw new KilnError('USAGE', `--dockerfile ${dockerfile}: a Dockerfile fetched from a URL is not supported by kiln; download it into the context and pass its path.`);
  }
  const asGiven = resolve(cwd, dockerfile);
  if (isFile(asGiven)) return asGiven;
  const inContext = isAbsolute(dockerfile) ? dockerfile : join(contextDir, dockerfile);
  if (isFile(inContext)) return inContext;
  const where = isAbsolute(dockerfile) ? dockerfile : `${inContext} (nor ${asGiven})`;
  throw new KilnError('USAGE', `the Dockerfile ${where} does not exist; pass --dockerfile relative to the context or as an absolute path.`);
}

function isFile(path: string): boolean {
  return statSync(path, { throwIfNoEntry: false })?.isFile() ?? false;
}
