import { pourStream, type BlobSink, type BlobTransferOptions } from './blob-sink.js';
import { DigestVerifier } from './digest.js';
import type { Layer } from './layer.js';

/**
 * Hands a layer's blob to `sink` and resolves once digest and size have matched: through the
 * layer's own `writeTo` when it has one (which verifies), otherwise from its stream, checked
 * here because nothing says that stream's source checks it.
 */
export async function writeLayerTo(layer: Layer, sink: BlobSink, options: BlobTransferOptions = {}): Promise<void> {
  if (layer.writeTo) return layer.writeTo(sink, options);
  options.signal?.throwIfAborted();
  const stream = await layer.compressed();
  await pourStream(stream, sink, new DigestVerifier(layer.digest, layer.size, `layer ${layer.digest}`), options);
}
