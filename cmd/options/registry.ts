import type { Argv } from 'yargs';
import { RegistryClient } from '../../src/registry/client.js';
import { createCredentialStore } from '../../src/registry/credentials.js';
import { parseRegistryOptions, type RegistryOptions } from '../../src/registry/endpoints.js';
import type { Logger } from '../../src/util/log.js';

export interface RegistryArgs {
  insecure: boolean;
  'insecure-pull': boolean;
  'insecure-registry': string[];
  'skip-tls-verify': boolean;
  'skip-tls-verify-pull': boolean;
  'skip-tls-verify-registry': string[];
  'registry-certificate': string[];
  'registry-client-cert': string[];
  'registry-mirror': string[];
  'registry-map': string[];
  'skip-default-registry-fallback': boolean;
  'image-download-retry': number;
  'push-retry': number;
}

const GROUP = 'Registry:';

/** kaniko's registry and TLS flags, with kaniko's names and defaults. */
export function withRegistryOptions<T>(argv: Argv<T>): Argv<T & RegistryArgs> {
  return argv
    .option('insecure', { type: 'boolean', default: false, describe: 'Push to insecure registries over plain HTTP', group: GROUP })
    .option('insecure-pull', { type: 'boolean', default: false, describe: 'Pull from insecure registries over plain HTTP', group: GROUP })
    .option('insecure-registry', { type: 'string', array: true, default: [], describe: 'A registry reached over plain HTTP (repeatable)', group: GROUP })
    .option('skip-tls-verify', { type: 'boolean', default: false, describe: 'Do not verify TLS certificates when pushing', group: GROUP })
    .option('skip-tls-verify-pull', { type: 'boolean', default: false, describe: 'Do not verify TLS certificates when pulling', group: GROUP })
    .option('skip-tls-verify-registry', { type: 'string', array: true, default: [], describe: 'A registry whose TLS certificate is not verified (repeatable)', group: GROUP })
    .option('registry-certificate', { type: 'string', array: true, default: [], describe: 'host=/path/ca.pem: an extra CA for a registry (repeatable)', group: GROUP })
    .option('registry-client-cert', { type: 'string', array: true, default: [], describe: 'host=/path/cert.pem,/path/key.pem: a client certificate (repeatable)', group: GROUP })
    .option('registry-mirror', { type: 'string', array: true, default: [], describe: 'A mirror used instead of Docker Hub, tried in order (repeatable)', group: GROUP })
    .option('registry-map', { type: 'string', array: true, default: [], describe: 'orig=mirror: pull orig through mirror (repeatable)', group: GROUP })
    .option('skip-default-registry-fallback', { type: 'boolean', default: false, describe: 'Fail instead of falling back to the original registry when every mirror failed', group: GROUP })
    .option('image-download-retry', { type: 'number', default: 0, describe: 'Extra attempts for a failed image download', group: GROUP })
    .option('push-retry', { type: 'number', default: 0, describe: 'Extra attempts for a failed push', group: GROUP }) as unknown as Argv<T & RegistryArgs>;
}

export function registryOptionsFromArgs(args: RegistryArgs, env: NodeJS.ProcessEnv): RegistryOptions {
  return parseRegistryOptions(
    {
      insecure: args.insecure,
      insecurePull: args['insecure-pull'],
      insecureRegistry: args['insecure-registry'],
      skipTlsVerify: args['skip-tls-verify'],
      skipTlsVerifyPull: args['skip-tls-verify-pull'],
      skipTlsVerifyRegistry: args['skip-tls-verify-registry'],
      registryCertificate: args['registry-certificate'],
      registryClientCert: args['registry-client-cert'],
      registryMirror: args['registry-mirror'],
      registryMap: args['registry-map'],
      skipDefaultRegistryFallback: args['skip-default-registry-fallback'],
    },
    env,
  );
}

/** The registry client every command uses: the registry flags, docker's config.json and its helpers. */
export function registryClientFromArgs(args: RegistryArgs, logger: Logger): RegistryClient {
  return new RegistryClient({ registry: registryOptionsFromArgs(args, process.env), credentials: createCredentialStore({ logger }), logger, userAgent: 'kiln' });
}
