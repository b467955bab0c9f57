// umoci builds and unpacks OCI layouts for the tests without kiln's code. As non-root it
// needs --rootless, which records files as owned by root all the same.
import { run } from './process.js';

function rootless(): string[] {
  return process.getuid?.() === 0 ? [] : ['--rootless'];
}

export async function umoci(args: string[]): Promise<void> {
  await run('umoci', args);
}

export async function umociInit(layoutDir: string): Promise<void> {
  await umoci(['init', '--layout', layoutDir]);
}

export async function umociNew(layoutDir: string, tag: string): Promise<void> {
  await umoci(['new', '--image', `${layoutDir}:${tag}`]);
}

/** Unpacks the image tagged `tag` into an OCI runtime bundle (`bundleDir/rootfs`, `config.json`). */
export async function umociUnpack(layoutDir: string, tag: string, bundleDir: string): Promise<void> {
  await umoci(['unpack', ...rootless(), '--image', `${layoutDir}:${tag}`, bundleDir]);
}

/** Appends the bundle's changes as a new layer of `tag`. */
export async function umociRepack(layoutDir: string, tag: string, bundleDir: string, createdBy: string): Promise<void> {
  await umoci(['repack', ...rootless(), '--history.created_by', createdBy, '--image', `${layoutDir}:${tag}`, bundleDir]);
}

export interface ImageConfigChange {
  cmd?: string[];
  env?: string[];
  architecture?: string;
  os?: string;
}

export async function umociConfig(layoutDir: string, tag: string, change: ImageConfigChange): Promise<void> {
  const args = ['config', '--image', `${layoutDir}:${tag}`, '--no-history'];
  for (const word of change.cmd ?? []) args.push('--config.cmd', word);
  for (const env of change.env ?? []) args.push('--config.env', env);
  if (change.architecture) args.push('--architecture', change.architecture);
  if (change.os) args.push('--os', change.os);
  await umoci(args);
}

/** Drops blobs that no tag reaches any more (umoci config leaves the old ones behind). */
export async function umociGc(layoutDir: string): Promise<void> {
  await umoci(['gc', '--layout', layoutDir]);
}
