// The setting most integration tests build in, started once per test file.
import { after, before } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { busyboxLayout, pushLayout } from './images.js';
import { startRegistry, type RunningRegistry } from './registry.js';

export interface BusyboxRegistry {
  /** A plain-HTTP registry of the file's own. */
  readonly registry: RunningRegistry;
  /** The busybox image in that registry: `HOST/base/busybox:1`. */
  readonly base: string;
  /** A temporary directory for the file's contexts and roots. */
  readonly work: string;
}

/** Starts the registry and pushes busybox before the file's tests; stops it and removes `work` after them. */
export function useBusyboxRegistry(workPrefix: string): BusyboxRegistry {
  const work = mkdtempSync(join(tmpdir(), workPrefix));
  let registry: RunningRegistry | undefined;
  before(async () => {
    registry = await startRegistry('plain');
    const layout = await busyboxLayout();
    await pushLayout(layout.dir, layout.tag, registry, 'base/busybox:1');
  });
  after(async () => {
    await registry?.stop();
    rmSync(work, { recursive: true, force: true });
  });
  const started = (): RunningRegistry => {
    if (registry === undefined) throw new Error('the registry is started before the first test');
    return registry;
  };
  return {
    work,
    get registry() {
      return started();
    },
    get base() {
      return `${started().host}/base/busybox:1`;
    },
  };
}
