import { pipeline, type Readable, type Transform } from 'node:stream';

/**
 * Pipes `source` through `transforms` and hands back the last stream to read from. An error
 * anywhere in the chain reaches whoever reads it, and destroying it early releases the
 * source (an open file, a socket) instead of leaking it.
 */
export function chain(source: Readable, ...transforms: Transform[]): Readable {
  const last = transforms.at(-1);
  if (last === undefined) return source;
  pipeline([source, ...transforms], (err) => {
    if (err && !last.destroyed) last.destroy(err);
  });
  return last;
}
