import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Image } from '../oci/image.js';
import type { BlobLocation } from '../oci/layer.js';
import { writeLayout } from '../oci/layout.js';
import { writeDockerTarball } from '../oci/tarball.js';
import type { RegistryClient } from '../registry/client.js';
import { pushImage, type PushOptions, type PushResult } from '../registry/push.js';
import { formatReference, type Reference } from '../registry/reference.js';
import { describeError, KilnError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { logOnlyProgress } from '../util/progress.js';
import { retryOperation } from '../util/retry.js';
import { BuildProgress } from './progress.js';

export interface OutputOptions {
  destinations: readonly Reference[];
  noPush: boolean;
  tarPath?: string;
  ociLayoutPath?: string;
  digestFile?: string;
  imageNameWithDigestFile?: string;
  imageNameTagWithDigestFile?: string;
  pushRetry: number;
}

/**
 * Writes the built image everywhere the user asked. Destinations on one registry share blobs:
 * the first upload is mounted into the other repositories, never uploaded twice. Digest files
 * are written last, so they only ever name an image that was pushed.
 */
export async function writeOutputs(
  image: Image,
  options: OutputOptions,
  client: RegistryClient,
  logger: Logger,
  pendingLocation?: PushOptions['pendingLocation'],
  progress: BuildProgress = new BuildProgress(logOnlyProgress(logger)),
): Promise<PushResult[]> {
  const pushed: PushResult[] = [];
  if (!options.noPush) {
    let known: BlobLocation[] = [];
    for (const destination of options.destinations) {
      const started = performance.now();
      const pushing = progress.pushing(image, formatReference(destination));
      let result: PushResult;
      try {
        result = await retryOperation(options.pushRetry, `pushing ${formatReference(destination)}`, logger, () =>
          pushImage(client, pushing.image, destination, { logger, knownLocations: known, onBlob: pushing.onBlob, ...(pendingLocation ? { pendingLocation } : {}) }),
        );
      } catch (err) {
        pushing.fail();
        throw err;
      }
      const mounted = result.blobs.filter((b) => b.result.kind === 'mounted').length;
      pushing.end(`pushed ${formatReference(destination)}@${result.digest} in ${((performance.now() - started) / 1000).toFixed(2)} s (${result.uploadedBytes} bytes uploaded, ${mounted} blobs mounted)`);
      pushed.push(result);
      known = [{ registry: destination.registry, repository: destination.repository }, ...known];
    }
  }
  if (options.ociLayoutPath) {
    await writeLayout(options.ociLayoutPath, [{ image, refName: options.destinations[0]?.tag ?? 'latest' }]);
    logger.info(`wrote OCI layout ${options.ociLayoutPath}`);
  }
  if (options.tarPath) {
    await writeDockerTarball(options.tarPath, [{ image, tags: options.destinations.map(formatReference) }]);
    logger.info(`wrote docker tarball ${options.tarPath}`);
  }
  if (options.digestFile) await writeOutputFile(options.digestFile, image.digest);
  if (options.imageNameWithDigestFile) {
    await writeOutputFile(options.imageNameWithDigestFile, options.destinations.map((d) => `${d.registry}/${d.repository}@${image.digest}\n`).join(''));
  }
  if (options.imageNameTagWithDigestFile) {
    await writeOutputFile(options.imageNameTagWithDigestFile, options.destinations.map((d) => `${d.registry}/${d.repository}${d.tag ? `:${d.tag}` : ''}@${image.digest}\n`).join(''));
  }
  return pushed;
}

/** A digest file, with its parent directories created as for --tar-path and --oci-layout-path. */
async function writeOutputFile(path: string, content: string): Promise<void> {
  try {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, content);
  } catch (err) {
    throw new KilnError('IO', `cannot write ${path}: ${describeError(err)}; check that the directory is writable.`, { cause: err });
  }
}
