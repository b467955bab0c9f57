import { writeFile } from 'node:fs/promises';
import type { Argv } from 'yargs';
import { KilnError } from '../../src/util/errors.js';
import type { Logger } from '../../src/util/log.js';
import { retryOperation } from '../../src/util/retry.js';
import type { Image } from '../../src/oci/image.js';
import type { BlobLocation } from '../../src/oci/layer.js';
import { layoutImage, writeLayout } from '../../src/oci/layout.js';
import { parsePlatform } from '../../src/oci/platform.js';
import { writeDockerTarball } from '../../src/oci/tarball.js';
import type { RegistryClient } from '../../src/registry/client.js';
import { pushImage } from '../../src/registry/push.js';
import { fetchRemoteImage } from '../../src/registry/remote.js';
import { formatReference, parseReference, type Reference } from '../../src/registry/reference.js';
import { loggerFromArgs, withLoggingOptions, type LoggingArgs } from '../options/logging.js';
import { registryClientFromArgs, withRegistryOptions, type RegistryArgs } from '../options/registry.js';
import { formatBytes } from '../../src/util/format.js';

interface CopyArgs extends LoggingArgs, RegistryArgs {
  source: string;
  destination: string[];
  'oci-layout-path'?: string;
  'tar-path'?: string;
  'digest-file'?: string;
  'image-name-with-digest-file'?: string;
  'custom-platform'?: string;
}

export const copyCommand = {
  command: 'copy <source> [destination..]',
  describe: 'Copy an image from a registry or an OCI layout (oci:DIR[:TAG]) to registries, a layout or a tarball',
  builder: (argv: Argv) =>
    withRegistryOptions(withLoggingOptions(argv))
      .positional('source', { type: 'string', demandOption: true, describe: 'Image reference, or oci:DIR[:TAG] for an OCI layout' })
      .positional('destination', { type: 'string', array: true, default: [], describe: 'Image references to push to' })
      .option('oci-layout-path', { type: 'string', describe: 'Also write the image to this OCI layout directory' })
      .option('tar-path', { type: 'string', describe: 'Also write the image as a docker tarball (docker load)' })
      .option('digest-file', { type: 'string', describe: 'Write the image digest to this file' })
      .option('image-name-with-digest-file', { type: 'string', describe: 'Write destination@digest lines to this file' })
      .option('custom-platform', { type: 'string', describe: 'Platform to select from a multi-platform image, e.g. linux/arm64' }),
  handler: async (args: CopyArgs) => copy(args),
};

async function copy(args: CopyArgs): Promise<void> {
  const logger = loggerFromArgs(args);
  const destinations = args.destination.map(parseDestination);
  if (destinations.length === 0 && !args['oci-layout-path'] && !args['tar-path']) {
    throw new KilnError('USAGE', 'kiln copy needs somewhere to copy to: a destination reference, --oci-layout-path or --tar-path.');
  }
  const client = registryClientFromArgs(args, logger);
  try {
    const platform = args['custom-platform'] ? parsePlatform(args['custom-platform']) : undefined;
    const image = await retryOperation(args['image-download-retry'], `reading ${args.source}`, logger, () => readSource(client, args.source, platform, logger));
    let pushedTo: BlobLocation[] = image.layers[0]?.location ? [image.layers[0].location] : [];
    for (const destination of destinations) {
      const result = await retryOperation(args['push-retry'], `pushing ${formatReference(destination)}`, logger, () =>
        pushImage(client, image, destination, { logger, knownLocations: pushedTo }),
      );
      const mounted = result.blobs.filter((b) => b.result.kind === 'mounted').length;
      const present = result.blobs.filter((b) => b.result.kind === 'exists').length;
      logger.info(`pushed ${formatReference(destination)}@${result.digest}: ${formatBytes(result.uploadedBytes)} uploaded, ${mounted} blobs mounted, ${present} already there`);
      pushedTo = [{ registry: destination.registry, repository: destination.repository }, ...pushedTo];
    }
    if (args['oci-layout-path']) {
      await writeLayout(args['oci-layout-path'], [{ image, refName: destinations[0]?.tag ?? 'latest' }]);
      logger.info(`wrote OCI layout ${args['oci-layout-path']}`);
    }
    if (args['tar-path']) {
      const tags = destinations.length > 0 ? destinations.map(formatReference) : [];
      await writeDockerTarball(args['tar-path'], [{ image, tags }]);
      logger.info(`wrote docker tarball ${args['tar-path']}`);
    }
    if (args['digest-file']) await writeFile(args['digest-file'], image.digest);
    if (args['image-name-with-digest-file']) {
      const lines = destinations.map((d) => `${d.registry}/${d.repository}@${image.digest}\n`).join('');
      await writeFile(args['image-name-with-digest-file'], lines);
    }
    process.stdout.write(image.digest + '\n');
  } finally {
    await client.close();
  }
}

async function readSource(client: RegistryClient, source: string, platform: ReturnType<typeof parsePlatform> | undefined, logger: Logger): Promise<Image> {
  if (source.startsWith('oci:')) {
    const [dir, refName] = splitLayoutSource(source.slice(4));
    const image = await layoutImage(dir, { ...(refName ? { refName } : {}), ...(platform ? { platform } : {}) });
    logger.info(`read ${source} (${image.digest})`);
    return image;
  }
  const ref = parseReference(source);
  const remote = await fetchRemoteImage(client, ref, platform ? { platform } : {});
  logger.info(`resolved ${formatReference(ref)} to ${remote.resolved.digest}`);
  return remote.image;
}

/** `oci:DIR:TAG`, where DIR may itself contain colons only if no tag is given. */
function splitLayoutSource(text: string): [string, string | undefined] {
  const at = text.lastIndexOf(':');
  if (at <= 0 || text.slice(at + 1).includes('/')) return [text, undefined];
  return [text.slice(0, at), text.slice(at + 1)];
}

function parseDestination(text: string): Reference {
  const ref = parseReference(text);
  if (ref.digest && !ref.tag) throw new KilnError('USAGE', `destination ${text} names a digest; give a tag to push to.`);
  return ref;
}
