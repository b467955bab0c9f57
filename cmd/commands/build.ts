import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Argv } from 'yargs';
import { prepareContext } from '../../src/builder/context.js';
import { executeBuild } from '../../src/builder/executor.js';
import { EXECUTOR_MARKER } from '../../src/builder/isolation/index.js';
import type { BuildOptions } from '../../src/builder/options.js';
import type { Compression } from '../../src/oci/mediatypes.js';
import { hostPlatform, parsePlatform } from '../../src/oci/platform.js';
import { parseReference, type Reference } from '../../src/registry/reference.js';
import { defaultCacheRepo, parseCacheRepo } from '../../src/cache/open.js';
import { parseDurationFlag } from '../../src/util/duration.js';
import { SNAPSHOT_MODES, type SnapshotMode } from '../../src/snapshot/hasher.js';
import { KilnError } from '../../src/util/errors.js';
import { withLoggingOptions, type LoggingArgs } from '../options/logging.js';
import { logSummary } from '../../src/builder/summary.js';
import { createBuildOutput } from '../../src/util/progress-output.js';
import { parseBuildArgFlags } from '../options/build-args.js';
import { registryClientFromArgs, withRegistryOptions, type RegistryArgs } from '../options/registry.js';
import { withKanikoCompat } from '../options/compat.js';
import { noPushFromEnv } from '../options/compat-env.js';
import { resolveDockerfilePath } from '../options/dockerfile-path.js';

interface BuildArgs extends LoggingArgs, RegistryArgs {
  context: string;
  'context-sub-path'?: string;
  git?: string[];
  dockerfile: string;
  destination: string[];
  'no-push': boolean;
  'tar-path'?: string;
  'oci-layout-path'?: string;
  'digest-file'?: string;
  'image-name-with-digest-file'?: string;
  'image-name-tag-with-digest-file'?: string;
  'build-arg': string[];
  target?: string;
  'skip-unused-stages': boolean;
  label: string[];
  'custom-platform'?: string;
  'snapshot-mode': SnapshotMode;
  'single-snapshot': boolean;
  reproducible: boolean;
  compression: Compression;
  'compression-level': number;
  'ignore-path': string[];
  'ignore-var-run': boolean;
  cleanup: boolean;
  'kaniko-dir': string;
  isolation?: 'none' | 'chroot';
  'root-dir'?: string;
  force: boolean;
  cache: boolean;
  'cache-repo'?: string;
  'cache-ttl': string;
  'cache-run-layers': boolean;
  'cache-copy-layers': boolean;
  'no-push-cache': boolean;
  'compressed-caching': boolean;
  'cache-dir'?: string;
  'cache-explain': boolean;
}

const GROUP = 'Build:';
const OUTPUT = 'Output:';

const CACHE = 'Cache:';

export const buildCommand = {
  command: 'build',
  describe: "Build a Dockerfile into an image (kaniko's executor)",
  builder: (argv: Argv) => {
    // Old kaniko spellings (--tarPath, --snapshotMode, --customPlatform, --whitelist-var-run)
    // are aliases; kaniko flags with no kiln option of their own come from withKanikoCompat.
    const chain = withRegistryOptions(withLoggingOptions(argv))
      .option('context', { alias: 'c', type: 'string', default: '/workspace/', describe: 'Build context: a directory, dir://DIR, tar://FILE.tar.gz, tar://stdin, an http(s) URL of a .tar.gz, or a git repository (git://HOST/REPO.git#REF, https://HOST/REPO.git#REF:DIR)', group: GROUP })
      .option('context-sub-path', { type: 'string', describe: 'A sub-directory of the context to use as the context', group: GROUP })
      .option('git', { type: 'string', array: true, describe: 'Git context options: branch=B,single-branch=BOOL,recurse-submodules=BOOL,insecure-skip-tls=BOOL', group: GROUP })
      .option('dockerfile', { alias: 'f', type: 'string', default: 'Dockerfile', describe: 'The Dockerfile: the path as given if it exists, else relative to the context', group: GROUP })
      .option('destination', { alias: 'd', type: 'string', array: true, default: [], describe: 'Image to push to (repeatable)', group: OUTPUT })
      .option('no-push', { type: 'boolean', default: noPushFromEnv(process.env), describe: 'Build without pushing (default: KANIKO_NO_PUSH, else false)', group: OUTPUT })
      .option('tar-path', { alias: 'tarPath', type: 'string', describe: 'Write the image as a docker tarball', group: OUTPUT })
      .option('oci-layout-path', { type: 'string', describe: 'Write the image to an OCI layout directory', group: OUTPUT })
      .option('digest-file', { type: 'string', describe: 'Write the image digest to this file', group: OUTPUT })
      .option('image-name-with-digest-file', { type: 'string', describe: 'Write destination@digest lines to this file', group: OUTPUT })
      .option('image-name-tag-with-digest-file', { type: 'string', describe: 'Write destination:tag@digest lines to this file', group: OUTPUT })
      .option('build-arg', { type: 'string', array: true, default: [], describe: 'KEY=VALUE, or KEY to take the value from the environment (repeatable)', group: GROUP })
      .option('target', { type: 'string', describe: 'The stage to build', group: GROUP })
      .option('skip-unused-stages', { type: 'boolean', default: false, describe: 'Build only the stages the target needs', group: GROUP })
      .option('label', { type: 'string', array: true, default: [], describe: 'KEY=VALUE label added to the image (repeatable)', group: GROUP })
      .option('custom-platform', { alias: 'customPlatform', type: 'string', describe: 'Platform of the built image, e.g. linux/arm64 (default: this machine)', group: GROUP })
      .option('snapshot-mode', { alias: 'snapshotMode', choices: SNAPSHOT_MODES, default: 'full' as SnapshotMode, describe: 'How changes are found: full (content), redo (metadata), time (mtime)', group: GROUP })
      .option('single-snapshot', { type: 'boolean', default: false, describe: 'One layer per stage, taken at its end', group: GROUP })
      .option('reproducible', { type: 'boolean', default: false, describe: 'Zero every timestamp, for identical digests from identical inputs', group: GROUP })
      .option('compression', { choices: ['gzip', 'zstd'] as const, default: 'gzip' as Compression, describe: 'Layer compression', group: GROUP })
      .option('compression-level', { type: 'number', default: -1, describe: 'Compression level (-1: the default)', group: GROUP })
      .option('ignore-path', { type: 'string', array: true, default: [], describe: 'A path never snapshotted (repeatable)', group: GROUP })
      .option('ignore-var-run', { alias: 'whitelist-var-run', type: 'boolean', default: true, describe: 'Leave /var/run out of snapshots', group: GROUP })
      .option('cleanup', { type: 'boolean', default: false, describe: 'Clean the filesystem at the end of the build', group: GROUP })
      .option('kaniko-dir', { type: 'string', default: process.env.KANIKO_DIR ?? '/kaniko', describe: "The executor's own directory, never part of an image", group: GROUP })
      .option('isolation', { choices: ['none', 'chroot'] as const, describe: 'How RUN is isolated (default: none inside the executor image, chroot elsewhere)', group: GROUP })
      .option('root-dir', { type: 'string', describe: 'Where stage root filesystems go with --isolation=chroot (default: a temporary directory)', group: GROUP })
      .option('force', { type: 'boolean', default: false, describe: 'Accepted for kaniko: kiln builds outside a container without it', group: GROUP })
      .option('cache', { type: 'boolean', default: false, describe: 'Reuse layers of earlier builds from --cache-repo, and store new ones there', group: CACHE })
      .option('cache-repo', { type: 'string', describe: 'Registry repository of the layer cache, or oci:/path for a local OCI layout (default: <first destination>/cache)', group: CACHE })
      .option('cache-ttl', { type: 'string', default: '336h', describe: 'How long a cached layer is used (Go duration: 336h, 90m)', group: CACHE })
      .option('cache-run-layers', { type: 'boolean', default: true, describe: 'Cache the layers of RUN steps', group: CACHE })
      .option('cache-copy-layers', { type: 'boolean', default: false, describe: 'Cache the layers of COPY and ADD steps', group: CACHE })
      .option('no-push-cache', { type: 'boolean', default: false, describe: 'Look layers up in the cache, but store none', group: CACHE })
      .option('compressed-caching', { type: 'boolean', default: true, describe: 'Accepted for compatibility: kiln streams cached layers and never holds them in memory', group: CACHE })
      .option('cache-dir', { type: 'string', default: '/cache', describe: "Directory of base images stored by 'kiln warm'; FROM looks there before the registry ('' for none)", group: CACHE })
      .option('cache-explain', { type: 'boolean', default: false, describe: "Print every step's cache key and the inputs it is made of", group: CACHE });
    return withKanikoCompat(chain, 'build');
  },
  handler: async (args: BuildArgs) => {
    // Logs, progress and RUN output share stderr: made together so they never write over each other.
    const output = createBuildOutput({ level: args.verbosity, format: args['log-format'], timestamp: args['log-timestamp'], stream: process.stderr });
    const { logger } = output;
    const context = await prepareContext(args.context, args['context-sub-path'], args['root-dir'] ?? tmpdir(), process.stdin, logger, { git: args.git });
    const client = registryClientFromArgs(args, logger);
    try {
      const options = buildOptionsFromArgs(args, context.dir);
      const result = await executeBuild(options, { client, logger, progress: output.progress, output: { stdout: output.commandOutput, stderr: output.commandOutput } });
      logSummary(logger, result.summary, output.json);
      // Scripts read the digest from stdout: it stays the one thing written there.
      process.stdout.write(result.image.digest + '\n');
    } finally {
      output.close();
      await client.close();
      await context.dispose();
    }
  },
};

function buildOptionsFromArgs(args: BuildArgs, contextDir: string): BuildOptions {
  const dockerfilePath = resolveDockerfilePath(args.dockerfile, contextDir);
  const destinations = args.destination.map((text) => parseReference(text));
  if (destinations.length === 0 && !args['no-push']) {
    throw new KilnError('USAGE', 'give at least one --destination, or --no-push to build without pushing.');
  }
  const kanikoDir = args['kaniko-dir'];
  const isolation = args.isolation ?? (existsSync(join(kanikoDir, EXECUTOR_MARKER)) ? 'none' : 'chroot');
  return {
    contextDir,
    dockerfilePath,
    dockerfileName: args.dockerfile,
    destinations,
    noPush: args['no-push'],
    ...(args['tar-path'] ? { tarPath: resolve(args['tar-path']) } : {}),
    ...(args['oci-layout-path'] ? { ociLayoutPath: resolve(args['oci-layout-path']) } : {}),
    ...(args['digest-file'] ? { digestFile: resolve(args['digest-file']) } : {}),
    ...(args['image-name-with-digest-file'] ? { imageNameWithDigestFile: resolve(args['image-name-with-digest-file']) } : {}),
    ...(args['image-name-tag-with-digest-file'] ? { imageNameTagWithDigestFile: resolve(args['image-name-tag-with-digest-file']) } : {}),
    buildArgs: parseBuildArgFlags(args['build-arg']),
    ...(args.target ? { target: args.target } : {}),
    skipUnusedStages: args['skip-unused-stages'],
    labels: parseLabels(args.label),
    platform: args['custom-platform'] ? parsePlatform(args['custom-platform']) : hostPlatform(),
    snapshotMode: args['snapshot-mode'],
    singleSnapshot: args['single-snapshot'],
    reproducible: args.reproducible,
    compression: args.compression,
    ...(args['compression-level'] >= 0 ? { compressionLevel: args['compression-level'] } : {}),
    flavor: 'docker',
    ignorePaths: args['ignore-path'],
    ignoreVarRun: args['ignore-var-run'],
    kanikoDir,
    isolation,
    ...(args['root-dir'] ? { rootDir: resolve(args['root-dir']) } : {}),
    cleanup: args.cleanup,
    pushRetry: args['push-retry'],
    imageDownloadRetry: args['image-download-retry'],
    ...cacheOptionsFromArgs(args, destinations),
  };
}

function cacheOptionsFromArgs(args: BuildArgs, destinations: readonly Reference[]): Pick<BuildOptions, 'cache' | 'baseImageCache'> {
  const ttlMs = parseDurationFlag('cache-ttl', args['cache-ttl']);
  const options: Pick<BuildOptions, 'cache' | 'baseImageCache'> = {};
  if (args['cache-dir']) options.baseImageCache = { dir: resolve(args['cache-dir']), ttlMs };
  if (!args.cache) return options;
  const first = destinations[0];
  const repo = args['cache-repo'] ?? (first ? defaultCacheRepo(first) : undefined);
  if (repo === undefined) throw new KilnError('USAGE', '--cache needs --cache-repo when there is no --destination to derive it from.');
  parseCacheRepo(repo);
  options.cache = {
    repo,
    ttlMs,
    runLayers: args['cache-run-layers'],
    copyLayers: args['cache-copy-layers'],
    push: !args['no-push-cache'],
    explain: args['cache-explain'],
  };
  return options;
}

function parseLabels(values: readonly string[]): Map<string, string> {
  const labels = new Map<string, string>();
  for (const value of values) {
    const at = value.indexOf('=');
    if (at <= 0) throw new KilnError('USAGE', `--label ${value}: write it as KEY=VALUE.`);
    labels.set(value.slice(0, at), value.slice(at + 1));
  }
  return labels;
}
