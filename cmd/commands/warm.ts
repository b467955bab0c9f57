import { resolve } from 'node:path';
import type { Argv } from 'yargs';
import { dockerfileBaseImages } from '../../src/cache/warm-dockerfile.js';
import { parseBuildArgFlags } from '../options/build-args.js';
import { warmImages, type WarmResult, type WarmTarget } from '../../src/cache/warmer.js';
import { parsePlatform } from '../../src/oci/platform.js';
import { formatReference, parseReference } from '../../src/registry/reference.js';
import { parseDurationFlag } from '../../src/util/duration.js';
import { KilnError } from '../../src/util/errors.js';
import { loggerFromArgs, withLoggingOptions, type LoggingArgs } from '../options/logging.js';
import { registryClientFromArgs, withRegistryOptions, type RegistryArgs } from '../options/registry.js';
import { withKanikoCompat } from '../options/compat.js';

interface WarmArgs extends LoggingArgs, RegistryArgs {
  image: string[];
  dockerfile?: string;
  'build-arg': string[];
  'cache-dir': string;
  'cache-ttl': string;
  force: boolean;
  'custom-platform'?: string;
}

const GROUP = 'Warmer:';

export const warmCommand = {
  command: 'warm',
  describe: 'Download base images into the --cache-dir OCI layout that kiln build --cache-dir reads (kaniko\'s warmer)',
  builder: (argv: Argv) =>
    withKanikoCompat(withRegistryOptions(withLoggingOptions(argv))
      .option('image', { alias: 'i', type: 'string', array: true, default: [], describe: 'An image to warm (repeatable)', group: GROUP })
      .option('dockerfile', { alias: 'd', type: 'string', describe: 'Warm the images this Dockerfile\'s FROM lines name', group: GROUP })
      .option('build-arg', { type: 'string', array: true, default: [], describe: 'KEY=VALUE for ARGs before the first FROM of --dockerfile (repeatable)', group: GROUP })
      .option('cache-dir', { alias: 'c', type: 'string', default: '/cache', describe: 'The OCI layout directory to keep base images in', group: GROUP })
      .option('cache-ttl', {
        type: 'string',
        default: '336h',
        describe: 'How long a warmed tag is trusted before the registry is asked again (Go duration, e.g. 24h; 0 asks every time)',
        group: GROUP,
      })
      .option('force', { alias: 'f', type: 'boolean', default: false, describe: 'Download again even images and blobs already cached', group: GROUP })
      // kaniko's warmer spells it --customPlatform only.
      .option('custom-platform', { alias: 'customPlatform', type: 'string', describe: 'Platform to pick from multi-platform images, e.g. linux/arm64 (default: this machine)', group: GROUP }), 'warm'),
  handler: async (args: WarmArgs) => warm(args),
};

async function warm(args: WarmArgs): Promise<void> {
  const logger = loggerFromArgs(args);
  const ttlMs = parseDurationFlag('cache-ttl', args['cache-ttl']);
  const platform = args['custom-platform'] ? parsePlatform(args['custom-platform']) : undefined;
  const targets: WarmTarget[] = args.image.map((text) => ({ ref: parseReference(text) }));
  if (args.dockerfile) {
    const fromDockerfile = await dockerfileBaseImages(resolve(args.dockerfile), {
      buildArgs: parseBuildArgFlags(args['build-arg']),
      ...(platform ? { platform } : {}),
    });
    if (fromDockerfile.length === 0) logger.info(`${args.dockerfile} names no base image to warm (only scratch or earlier stages)`);
    targets.push(...fromDockerfile);
  } else if (args['build-arg'].length > 0) {
    throw new KilnError('USAGE', '--build-arg only applies to the ARGs of a --dockerfile; give --dockerfile too, or drop --build-arg.');
  }
  if (targets.length === 0 && !args.dockerfile) {
    throw new KilnError('USAGE', 'kiln warm needs something to warm: give --image (repeatable) or --dockerfile.');
  }
  const client = registryClientFromArgs(args, logger);
  try {
    await warmImages(targets, {
      cacheDir: args['cache-dir'],
      client,
      logger,
      ttlMs,
      force: args.force,
      ...(platform ? { platform } : {}),
      retries: args['image-download-retry'],
      onResult: (result) => process.stdout.write(reportLine(result) + '\n'),
    });
  } finally {
    await client.close();
  }
}

function reportLine(result: WarmResult): string {
  const ref = formatReference(result.ref);
  return result.status === 'warmed' ? `warmed ${ref} ${result.digest}` : `${ref} is already cached (${result.digest})`;
}
