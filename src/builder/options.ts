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
  /** `--cache`: the layer cache; undefined when it is off. */
  cache?: CacheOptions;
  /** `--cache-dir`: where the warmer stored base images; FROM looks there first. */
  baseImageCache?: { dir: string; ttlMs: number };
}

export interface CacheOptions {
  /** `--cache-repo`: a registry repository or `oci:/path`. */
  repo: string;
  ttlMs: number;
  /** `--cache-run-layers`: RUN (and WORKDIR) steps are looked up and stored. */
  runLayers: boolean;
  /** `--cache-copy-layers`: COPY and ADD steps are looked up and stored. */
  copyLayers: boolean;
  /** False with `--no-push-cache`: look up, never store. */
  push: boolean;
  /** `--cache-explain`: print every key's inputs. */
  explain: boolean;
}
