import { Transform, type Readable } from 'node:stream';
import { decompress } from '../oci/compression.js';
import type { BlobSink } from '../oci/blob-sink.js';
import type { Layer } from '../oci/layer.js';
import { layerMetadata } from '../oci/blob-layer.js';
import { layerCompression } from '../oci/mediatypes.js';
import { chain } from '../oci/streams.js';

/** What a counted layer reports as its blob streams. */
export interface BlobWatcher {
  /** Someone asked for the blob (again, after a retry): called before it is fetched. */
  requested?(): void;
  bytes(count: number): void;
  /** The blob was read to its end. */
  ended?(): void;
}

/**
 * The same layer, with every byte read from its blob reported to `watch`: how kiln counts
 * what a pull downloads and a push uploads without the registry client or the extractor
 * knowing. The tar stream is the counted blob decompressed, as every layer source makes it.
 */
export function countedLayer(layer: Layer, watch: BlobWatcher): Layer {
  const compressed = async (): Promise<Readable> => {
    watch.requested?.();
    return chain(await layer.compressed(), counter(watch));
  };
  return {
    ...layerMetadata(layer),
    compressed,
    async uncompressed() {
      return chain(await compressed(), decompress(layerCompression(layer.mediaType)));
    },
    ...(layer.writeTo ? { writeTo: countedWriteTo(layer, layer.writeTo, watch) } : {}),
  };
}

/** The layer's own way to a sink, each chunk counted as it goes to the sink. */
function countedWriteTo(layer: Layer, writeTo: NonNullable<Layer['writeTo']>, watch: BlobWatcher): NonNullable<Layer['writeTo']> {
  return async (sink, options) => {
    watch.requested?.();
    const counting: BlobSink = {
      ...(sink.concurrency !== undefined ? { concurrency: sink.concurrency } : {}),
      write(chunk, position) {
        watch.bytes(chunk.length);
        return sink.write(chunk, position);
      },
    };
    await writeTo.call(layer, counting, options);
    watch.ended?.();
  };
}

function counter(watch: BlobWatcher): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      watch.bytes(chunk.length);
      callback(null, chunk);
    },
    flush(callback) {
      watch.ended?.();
      callback();
    },
  });
}
