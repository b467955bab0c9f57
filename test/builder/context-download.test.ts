// Remote tar contexts against a server on 127.0.0.1.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { prepareContext } from '../../src/builder/context.js';
import { isKilnError } from '../../src/util/errors.js';
import { createLogger } from '../../src/util/log.js';

const work = mkdtempSync(join(tmpdir(), 'kiln-context-download-'));
let server: Server;
let base = '';

before(async () => {
  const src = join(work, 'src');
  mkdirSync(join(src, 'app'), { recursive: true });
  writeFileSync(join(src, 'app', 'Dockerfile'), 'FROM scratch\n');
  writeFileSync(join(src, 'top.txt'), 'top\n');
  execFileSync('tar', ['-czf', join(work, 'ctx.tar.gz'), '-C', src, '.']);
  const archive = readFileSync(join(work, 'ctx.tar.gz'));
  server = createServer((req, res) => {
    if (req.url === '/ctx.tar.gz') {
      res.writeHead(200, { 'content-length': archive.length }).end(archive);
    } else if (req.url === '/moved') {
      res.writeHead(302, { location: '/ctx.tar.gz' }).end();
    } else if (req.url === '/short') {
      // Promises the whole archive, sends half, and hangs up.
      res.writeHead(200, { 'content-length': archive.length });
      res.write(archive.subarray(0, archive.length >> 1), () => res.destroy());
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  await new Promise((resolve) => server.close(resolve));
  rmSync(work, { recursive: true, force: true });
});

const logger = createLogger({ level: 'silent' });

for (const [form, context] of [
  ['tar://http://…', () => `tar://${base}/ctx.tar.gz`],
  ['http://….tar.gz (kaniko’s remote tar)', () => `${base}/ctx.tar.gz`],
  ['a redirect', () => `tar://${base}/moved`],
] as const) {
  test(`${form} is downloaded and unpacked into the scratch directory`, async () => {
    const scratch = mkdtempSync(join(work, 'scratch-'));
    const prepared = await prepareContext(context(), undefined, scratch, Readable.from([]), logger);
    assert.equal(readFileSync(join(prepared.dir, 'top.txt'), 'utf8'), 'top\n');
    assert.deepEqual(readdirSync(prepared.dir).sort(), ['app', 'top.txt'], 'the downloaded archive is not part of the context');
    await prepared.dispose();
    assert.deepEqual(readdirSync(scratch), []);
  });
}

test('--context-sub-path applies inside a downloaded context', async () => {
  const prepared = await prepareContext(`tar://${base}/ctx.tar.gz`, 'app', work, Readable.from([]), logger);
  assert.equal(readFileSync(join(prepared.dir, 'Dockerfile'), 'utf8'), 'FROM scratch\n');
  await prepared.dispose();
});

test('--context-sub-path cannot climb out of a downloaded context', async () => {
  const scratch = mkdtempSync(join(work, 'scratch-'));
  await assert.rejects(prepareContext(`tar://${base}/ctx.tar.gz`, '../..', scratch, Readable.from([]), logger), /^KilnError: --context-sub-path \.\.\/\.\. leaves the context tar:\/\/http:\/\/127\.0\.0\.1:\d+\/ctx\.tar\.gz; name a directory inside it\.$/);
  assert.deepEqual(readdirSync(scratch), []);
});

for (const [what, path, message] of [
  ['an HTTP error', '/missing.tar.gz', /^--context tar:\/\/http:\/\/127\.0\.0\.1:\d+\/missing\.tar\.gz: the server answered HTTP 404; check the URL \(kiln sends no credentials when it downloads a context\)\.$/],
  ['a download that breaks off', '/short', /^--context tar:\/\/http:\/\/127\.0\.0\.1:\d+\/short: the download broke off \(.+\); check the server and build again\.$/],
] as const) {
  test(`${what} is one sentence naming --context, and leaves nothing behind`, async () => {
    const scratch = mkdtempSync(join(work, 'scratch-'));
    await assert.rejects(prepareContext(`tar://${base}${path}`, undefined, scratch, Readable.from([]), logger), (err: unknown) => {
      assert.ok(isKilnError(err, 'USAGE'), String(err));
      assert.match(err.message, message);
      return true;
    });
    assert.deepEqual(readdirSync(scratch), []);
  });
}

test('an unreachable server is one sentence naming --context', async () => {
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise((resolve) => closed.close(resolve));
  await assert.rejects(prepareContext(`http://127.0.0.1:${port}/ctx.tar.gz`, undefined, work, Readable.from([]), logger), /^KilnError: --context http:\/\/127\.0\.0\.1:\d+\/ctx\.tar\.gz: cannot download it \(.*ECONNREFUSED.*\); check the URL and that the network allows it\.$/);
});
