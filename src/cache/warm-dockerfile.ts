/**
 * The base images a Dockerfile's FROM lines name, for `kiln warm --dockerfile`: ARGs before
 * the first FROM are expanded with --build-arg values as a build would, and FROM lines naming
 * an earlier stage or `scratch` are not images.
 */
import { readFile } from 'node:fs/promises';
import { parseDockerfile, resolveStages } from '../dockerfile/index.js';
import { formatPlatform, hostPlatform, parsePlatform } from '../oci/platform.js';
import type { Platform } from '../oci/types.js';
import { formatReference, parseReference } from '../registry/reference.js';
import { KilnError, describeError, isKilnError } from '../util/errors.js';
import type { WarmTarget } from './warmer.js';

export interface DockerfileBaseOptions {
  /** `--build-arg K=V` as K → V; `--build-arg K` as K → undefined (taken from the environment). */
  buildArgs: ReadonlyMap<string, string | undefined>;
  /** The platform a build would target (--custom-platform); FROM --platform overrides it per stage. */
  platform?: Platform;
  environment?: Readonly<Record<string, string | undefined>>;
}

export async function dockerfileBaseImages(path: string, options: DockerfileBaseOptions): Promise<WarmTarget[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new KilnError('USAGE', `cannot read the Dockerfile ${path} given to --dockerfile: ${describeError(err)}.`, { cause: err });
  }
  const plan = resolveStages(parseDockerfile(text, path), {
    buildArgs: options.buildArgs,
    platform: { build: hostPlatform(), target: options.platform ?? hostPlatform() },
    ...(options.environment ? { environment: options.environment } : {}),
  });
  const targets: WarmTarget[] = [];
  const seen = new Set<string>();
  for (const stage of plan.stages) {
    if (stage.base.kind !== 'image') continue;
    const at = `${path}:${stage.from.line}`;
    const ref = parseAt(stage.base.ref, at);
    const platform = stage.platform !== undefined ? parsePlatform(stage.platform) : undefined;
    const key = `${formatReference(ref)} ${platform ? formatPlatform(platform) : ''}`;
    if (seen.has(key)) continue;
    seen.add(key);
    targets.push(platform ? { ref, platform } : { ref });
  }
  return targets;
}

function parseAt(text: string, at: string): ReturnType<typeof parseReference> {
  try {
    return parseReference(text);
  } catch (err) {
    if (!isKilnError(err)) throw err;
    throw new KilnError(err.code, `${at}: ${err.message}`, { cause: err });
  }
}
