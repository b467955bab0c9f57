// A remote tar context (kaniko's https:// context, and tar://https://...): downloaded to a file
// first, so that a connection dropped halfway fails the build before anything is unpacked.
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { defaultFetch } from '../copy/fetch.js';
import type { Fetch, FetchResponse } from '../copy/types.js';
import { describeError, KilnError } from '../../util/errors.js';
import type { Logger } from '../../util/log.js';

export async function downloadContext(url: string, file: string, shown: string, logger: Logger, fetch: Fetch = defaultFetch): Promise<void> {
  logger.info(`downloading the context ${shown}`);
  let response: FetchResponse;
  try {
    response = await fetch(url);
  } catch (err) {
    throw new KilnError('USAGE', `--context ${shown}: cannot download it (${describeError(err)}); check the URL and that the network allows it.`, { cause: err });
  }
  if (response.status < 200 || response.status > 299) {
    response.body.resume();
    throw new KilnError('USAGE', `--context ${shown}: the server answered HTTP ${response.status}; check the URL (kiln sends no credentials when it downloads a context).`);
  }
  const header = response.headers['content-length'];
  const expected = typeof header === 'string' && /^\d+$/.test(header) ? Number(header) : undefined;
  let bytes = 0;
  const count = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  try {
    await pipeline(response.body, count, createWriteStream(file, { flags: 'wx', mode: 0o600 }));
    if (expected !== undefined && bytes !== expected) throw new Error(`got ${bytes} of ${expected} bytes`);
  } catch (err) {
    await rm(file, { force: true });
    throw new KilnError('USAGE', `--context ${shown}: the download broke off (${describeError(err)}); check the server and build again.`, { cause: err });
  }
  logger.debug(`downloaded ${bytes} bytes of the context`);
}
