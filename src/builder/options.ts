import type { Compression, ManifestFlavor } from '../oci/mediatypes.js';
import type { Platform } from '../oci/types.js';
import type { SnapshotMode } from '../snapshot/hasher.js';
import type { IsolationKind } from './isolation/index.js';
import type { OutputOptions } from './outputs.js';

/** Everything one build needs, validated once by the command line and never changed after. */
export interface BuildOptions extends OutputOptions {
  /** The build context as a directory on this machine. */
  contextDir: string;
  /** The Dockerfile on this machine, and the name used in messages. */
  dockerfilePath: string;
  dockerfileName: string;
  buildArgs: ReadonlyMap<string, string | undefined>;
  target?: string;
  skipUnusedStages: boolean;
  labels: ReadonlyMap<string, string>;
  platform: Platform;
  snapshotMode: SnapshotMode;
  singleSnapshot: boolean;
  reproducible: boolean;
  compression: Compression;
  compressionLevel?: number;
  flavor: ManifestFlavor;
  ignorePaths: readonly string[];
  ignoreVarRun: boolean;
  kanikoDir: string;
  isolation: IsolationKind;
  /** Where stage root filesystems go with `chroot` isolation; a temporary directory by default. */
  rootDir?: string;
  cleanup: boolean;
  imageDownloadRetry: number;
}
