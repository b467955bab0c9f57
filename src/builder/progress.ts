import type { Image } from '../oci/image.js';
import type { Layer } from '../oci/layer.js';
import { isForeignLayer } from '../oci/mediatypes.js';
import type { PushOptions } from '../registry/push.js';
import { formatBytes } from '../util/format.js';
import { logOnlyProgress, type ProgressSink } from '../util/progress.js';
import { silentLogger } from '../util/log.js';
import { countedLayer } from './progress-layers.js';
import { PhaseClock } from './progress-phases.js';

export interface ExtractStats {
  layers: number;
  /** Bytes downloaded from registries (layers kiln already had on disk are not counted). */
  pulledBytes: number;
  seconds: number;
}

/** A push under way: the image to push (its layers counted), the push's blob callback, and its end. */
export interface Pushing {
  image: Image;
  onBlob: NonNullable<PushOptions['onBlob']>;
  end(message: string): void;
  fail(): void;
}

/**
 * A build's progress: what it shows while the work runs (through the sink the build was given)
 * and what the summary reports at the end (bytes pulled, seconds per phase).
 */
export class BuildProgress {
  readonly phases: PhaseClock;
  /** Layer bytes downloaded from registries so far. */
  pulledBytes = 0;

  constructor(
    private readonly sink: ProgressSink = logOnlyProgress(silentLogger()),
    private readonly now: () => number = () => performance.now(),
  ) {
    this.phases = new PhaseClock(now);
  }

  /**
   * Runs `extract` on `layers` (in order, as extractImage and extractLayer apply them) with a
   * pull task while registry blobs download and an extract task throughout. `describe` gives
   * the result line logged at the end.
   */
  async extract(
    layers: readonly Layer[],
    label: string,
    extract: (counted: Layer[]) => Promise<unknown>,
    describe?: (stats: ExtractStats) => string,
  ): Promise<ExtractStats> {
    return this.phases.time('pull', async () => {
      const started = this.now();
      const count = layers.length;
      const remoteTotal = layers.reduce((sum, layer) => sum + (layer.location ? layer.size : 0), 0);
      const remoteLayers = layers.filter((layer) => layer.location).length;
      let pulled = 0;
      let requested = 0;
      let remoteEnded = 0;
      let lastEnded = false;
      let fetching = '';
      // kiln's extractor asks for layer i+1's blob as it starts applying layer i (it fetches
      // one layer ahead), so the layer being applied is the one before the newest asked for;
      // the last one is only known to be under way once its blob is all there.
      const applying = (): number => (requested < count ? Math.max(1, requested - 1) : lastEnded ? count : Math.max(1, count - 1));
      const pullState = () => ({
        text: `${label}: pulling layer ${fetching} ${formatRatio(pulled, remoteTotal)}`,
        done: pulled,
        total: remoteTotal,
        unit: 'bytes' as const,
      });
      const extractState = () => ({ text: `${label}: extracting layer ${applying()}/${count}`, done: applying() - 1, total: count, unit: 'layers' as const });
      let pull = remoteLayers > 0 ? this.sink.begin('pull', { text: `${label}: pulling ${remoteLayers} ${plural(remoteLayers, 'layer')}, ${formatBytes(remoteTotal)}`, done: 0, total: remoteTotal, unit: 'bytes' }) : undefined;
      const task = count > 0 ? this.sink.begin('extract', extractState()) : undefined;
      const counted = layers.map((layer, i) =>
        countedLayer(layer, {
          requested: () => {
            requested = Math.max(requested, i + 1);
            if (layer.location) {
              fetching = `${i + 1}/${count} (${layer.digest.slice(0, 19)})`;
              pull?.update(pullState());
            }
            task?.update(extractState());
          },
          bytes: (n) => {
            if (!layer.location) return;
            pulled += n;
            this.pulledBytes += n;
            pull?.update(pullState());
          },
          ended: () => {
            if (i === count - 1) lastEnded = true;
            if (layer.location && ++remoteEnded >= remoteLayers) {
              pull?.end();
              pull = undefined;
            }
            task?.update(extractState());
          },
        }),
      );
      try {
        await extract(counted);
      } catch (err) {
        pull?.fail();
        task?.fail();
        throw err;
      }
      const stats: ExtractStats = { layers: count, pulledBytes: pulled, seconds: (this.now() - started) / 1000 };
      pull?.end();
      task?.update({ text: `${label}: extracting layer ${count}/${count}`, done: count, total: count, unit: 'layers' });
      task?.end(describe?.(stats));
      return stats;
    });
  }

  /** A snapshot (finding what a step changed and writing its layer) shown as a task. */
  async snapshot<T>(label: string, work: () => Promise<T>): Promise<T> {
    return this.phases.time('snapshot', async () => {
      const task = this.sink.begin('snapshot', { text: `snapshotting ${label}` });
      try {
        const result = await work();
        task.end();
        return result;
      } catch (err) {
        task.fail();
        throw err;
      }
    });
  }

  /** Starts showing the push of `image` to `destination`. */
  pushing(image: Image, destination: string): Pushing {
    const total = image.layers.filter((layer) => !isForeignLayer(layer.mediaType)).length;
    const done = new Set<string>();
    let uploaded = 0;
    const state = () => ({
      text: `pushing ${destination}: ${done.size}/${total} ${plural(total, 'blob')}, ${formatBytes(uploaded)} uploaded`,
      done: done.size,
      total,
      unit: 'blobs' as const,
      bytes: uploaded,
    });
    const task = this.sink.begin('push', state());
    const layers = image.layers.map((layer) =>
      countedLayer(layer, {
        bytes: (n) => {
          uploaded += n;
          task.update(state());
        },
      }),
    );
    return {
      image: { ...image, layers },
      onBlob: ({ digest }) => {
        done.add(digest);
        task.update(state());
      },
      end: (message) => task.end(message),
      fail: () => task.fail(),
    };
  }
}

/** The line logged once an image's files are in place: `stage 1: extracted 3 layers (2.1 MiB pulled) in 0.41 s`. */
export function extractedLine(label: string, stats: ExtractStats): string {
  const pulled = stats.pulledBytes > 0 ? `(${formatBytes(stats.pulledBytes)} pulled) ` : '';
  return `${label}: extracted ${stats.layers} ${plural(stats.layers, 'layer')} ${pulled}in ${stats.seconds.toFixed(2)} s`;
}

/** `45.2/120.0 MiB`: both counts in the unit that suits the total. */
export function formatRatio(done: number, total: number): string {
  const [unit, size] = total < 1024 * 1024 ? ['KiB', 1024] : ['MiB', 1024 * 1024];
  return `${(done / size).toFixed(1)}/${(total / size).toFixed(1)} ${unit}`;
}

export function plural(count: number, noun: string): string {
  return count === 1 ? noun : `${noun}s`;
}
