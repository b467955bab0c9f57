// kiln's executor image (deploy/executor, built by kiln through scripts/executor-image.ts):
// kaniko's layout and environment, read back with umoci, skopeo and patchelf; the entry
// points run with runc in a `/` holding nothing but the image, and keep running once a base
// image has replaced /lib; the debug variant's shell; and the CA bundle kaniko users append to.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, openSync, readFileSync, readSync, closeSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { busyboxLayout, pushLayout, startRegistry, type RunningRegistry } from './harness/index.js';
import { executorImage, type ExecutorImage } from './harness/executor-image.js';
import { runPod, unpacked } from './harness/pod.js';
import { formatMiB } from '../scripts/executor-image.js';

const isRoot = process.getuid?.() === 0;
const REPOSITORY = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const PT_INTERP = 3;

/** The ELF interpreter a program asks for, or undefined for a static one; read from its program headers. */
function elfInterpreter(path: string): string | undefined {
  const fd = openSync(path, 'r');
  try {
    const header = Buffer.alloc(64);
    readSync(fd, header, 0, 64, 0);
    assert.equal(header.toString('latin1', 0, 4), '\x7fELF', `${path} is not an ELF file`);
    const phoff = Number(header.readBigUInt64LE(32));
    const phentsize = header.readUInt16LE(54);
    const phnum = header.readUInt16LE(56);
    const table = Buffer.alloc(phentsize * phnum);
    readSync(fd, table, 0, table.length, phoff);
    for (let i = 0; i < phnum; i++) {
      const entry = table.subarray(i * phentsize);
      if (entry.readUInt32LE(0) !== PT_INTERP) continue;
      const offset = Number(entry.readBigUInt64LE(8));
      const size = Number(entry.readBigUInt64LE(32));
      const name = Buffer.alloc(size);
      readSync(fd, name, 0, size, offset);
      return name.toString('latin1').replace(/\0.*$/s, '');
    }
    return undefined;
  } finally {
    closeSync(fd);
  }
}

function patchelf(flag: string, file: string): string[] {
  return execFileSync('patchelf', [flag, file], { encoding: 'utf8' }).trim().split(/[\n:]/).filter(Boolean);
}

describe('kiln\'s executor image', { skip: isRoot ? false : 'needs root (umoci unpack and runc)', timeout: 600_000 }, () => {
  let executor: ExecutorImage;
  let work: string;
  let rootfs: string;

  before(async () => {
    executor = await executorImage();
    work = await mkdtemp(join(tmpdir(), 'kiln-executor-image-test-'));
    rootfs = join(await unpacked(executor.runnable, 'latest'), 'rootfs');
  });

  after(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('is built by kiln into an OCI layout and docker tarballs', (t) => {
    for (const variant of executor.result.variants) {
      assert.match(variant.digest, /^sha256:[0-9a-f]{64}$/);
      assert.ok(existsSync(variant.tarPath), `${variant.tarPath} is missing`);
      t.diagnostic(`${variant.variant}: ${formatMiB(variant.compressedBytes)} compressed, ${formatMiB(variant.uncompressedBytes)} uncompressed`);
    }
    const index = JSON.parse(readFileSync(join(executor.layout, 'index.json'), 'utf8')) as { manifests: { digest: string; annotations?: Record<string, string> }[] };
    const tags = Object.fromEntries(index.manifests.map((m) => [m.annotations?.['org.opencontainers.image.ref.name'], m.digest]));
    assert.deepEqual(tags, Object.fromEntries(executor.result.variants.map((v) => [v.tag, v.digest])));
  });

  it('has kaniko\'s layout under /kaniko and nothing else but /workspace', () => {
    assert.deepEqual(readdirSync(rootfs).sort(), ['kaniko', 'workspace']);
    for (const entry of ['executor', 'warmer']) {
      const path = join(rootfs, 'kaniko', entry);
      assert.ok((lstatSync(path).mode & 0o111) !== 0, `/kaniko/${entry} is not executable`);
      assert.equal(elfInterpreter(path), undefined, `/kaniko/${entry} must be static: / is replaced under it`);
    }
    assert.ok(lstatSync(join(rootfs, 'kaniko', '.kiln-executor')).isFile(), 'the marker that selects --isolation none');
    assert.match(readFileSync(join(rootfs, 'kaniko', 'ssl', 'certs', 'ca-certificates.crt'), 'utf8'), /BEGIN CERTIFICATE/);
    assert.equal(JSON.parse(readFileSync(join(rootfs, 'kaniko', 'kiln', 'package.json'), 'utf8')).type, 'module');
    assert.ok(existsSync(join(rootfs, 'kaniko', 'kiln', 'kiln.js')));
  });

  it('starts node through /kaniko\'s own loader and libraries', () => {
    const loader = elfInterpreter(join(rootfs, 'kaniko', 'bin', 'node'));
    assert.match(loader ?? '', /^\/kaniko\/lib\/ld-linux[^/]*\.so\.\d$/);
    assert.ok(lstatSync(join(rootfs, loader!)).isFile(), `${loader} is not in the image`);
    for (const program of ['node', 'setpriv']) {
      const path = join(rootfs, 'kaniko', 'bin', program);
      assert.equal(elfInterpreter(path), loader);
      assert.deepEqual(patchelf('--print-rpath', path), ['/kaniko/lib']);
      for (const library of patchelf('--print-needed', path)) {
        assert.ok(existsSync(join(rootfs, 'kaniko', 'lib', library)), `${program} needs ${library}, which /kaniko/lib lacks`);
      }
    }
  });

  it('has kaniko\'s environment, working directory and entrypoint', async () => {
    const config = JSON.parse(execFileSync('skopeo', ['inspect', '--config', `docker-archive:${executor.tarPath('executor')}`], { encoding: 'utf8' })) as { config: { Env: string[]; WorkingDir: string; Entrypoint: string[] } };
    const env = Object.fromEntries(config.config.Env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
    assert.equal(env.DOCKER_CONFIG, '/kaniko/.docker');
    assert.equal(env.SSL_CERT_DIR, '/kaniko/ssl/certs');
    assert.equal(env.HOME, '/root');
    assert.ok(env.PATH?.split(':').includes('/kaniko'), `PATH=${env.PATH}`);
    assert.equal(config.config.WorkingDir, '/workspace');
    assert.deepEqual(config.config.Entrypoint, ['/kaniko/executor']);
  });

  // With --isolation none the base image replaces /lib and /usr/lib under the running
  // executor: the entry points must need nothing from `/`.
  it('runs kiln build and kiln warm in a / holding nothing but the image, whatever /lib holds', async () => {
    const bare = { layout: executor.runnable, tag: 'latest', kubelet: false };
    const broken = 'not a library\n';
    const build = await runPod({
      ...bare,
      args: ['--help'],
      files: {
        '/lib64/ld-linux-x86-64.so.2': broken,
        '/lib/x86_64-linux-gnu/libc.so.6': broken,
        '/lib/x86_64-linux-gnu/libstdc++.so.6': broken,
        '/usr/lib/x86_64-linux-gnu/libstdc++.so.6': broken,
        '/etc/ld.so.cache': broken,
      },
    });
    assert.equal(build.code, 0, build.stderr);
    assert.match(build.stdout, /^kiln build\b/);
    assert.match(build.stdout, /--destination/);
    const warm = await runPod({ ...bare, command: ['/kaniko/warmer'], args: ['--help'] });
    assert.equal(warm.code, 0, warm.stderr);
    assert.match(warm.stdout, /^kiln warm\b/);
    assert.match(warm.stdout, /--cache-dir/);
  });

  it('has a debug variant with busybox under /busybox, a volume as in kaniko', async () => {
    const config = JSON.parse(execFileSync('skopeo', ['inspect', '--config', `docker-archive:${executor.tarPath('debug')}`], { encoding: 'utf8' })) as { config: { Env: string[]; Volumes?: Record<string, unknown>; Entrypoint: string[] } };
    assert.deepEqual(Object.keys(config.config.Volumes ?? {}), ['/busybox']);
    assert.deepEqual(config.config.Entrypoint, ['/kaniko/executor']);
    // A pod rather than umoci's bundle as is: umoci mounts an empty tmpfs on each VOLUME,
    // where containerd and Docker copy the image's files into it.
    const ran = await runPod({ layout: executor.runnable, tag: 'debug', command: ['/bin/sh', '-c', 'ls /busybox/busybox && executor --help | head -n 1 && warmer --help | head -n 1'] });
    assert.equal(ran.code, 0, ran.stderr);
    assert.equal(ran.stdout, '/busybox/busybox\nkiln build\nkiln warm\n');
  });

  it('holds every /kaniko and /busybox path the examples/ pipelines use', async () => {
    const debugRoot = join(await unpacked(executor.runnable, 'debug'), 'rootfs');
    const examples = execFileSync('grep', ['-rhoE', '/(kaniko|busybox)(/[A-Za-z0-9._-]+)*', join(REPOSITORY, 'examples')], { encoding: 'utf8' });
    const used = [...new Set(examples.split('\n').filter(Boolean))].sort();
    assert.ok(used.includes('/kaniko/executor') && used.includes('/busybox/sh'), `the examples name: ${used.join(' ')}`);
    // The pipelines mount or write their registry credentials there themselves.
    const missing = used.filter((path) => !path.startsWith('/kaniko/.docker') && !existsSync(join(path.startsWith('/busybox') ? debugRoot : rootfs, path)));
    assert.deepEqual(missing, []);
  });

  describe('with a registry whose certificate a private CA signed', () => {
    let registry: RunningRegistry;
    let image: string;

    before(async () => {
      registry = await startRegistry('tls');
      const busybox = await busyboxLayout();
      await pushLayout(busybox.dir, busybox.tag, registry, 'base/busybox:1');
      image = `${registry.host}/base/busybox:1`;
    });
    after(async () => {
      await registry?.stop();
    });

    /** The warmer in a pod, with `content` mounted as /kaniko/ssl/certs/NAME. */
    async function warmWith(content: string, name = 'ca-certificates.crt') {
      const path = join(work, `ca-${Math.random().toString(36).slice(2)}.crt`);
      await writeFile(path, content);
      return runPod({
        layout: executor.runnable,
        tag: 'latest',
        command: ['/kaniko/warmer'],
        args: ['--image', image, '--cache-dir', '/cache'],
        mounts: [{ source: path, destination: `/kaniko/ssl/certs/${name}`, readonly: true }],
      });
    }

    it('trusts the CA once it is appended to /kaniko/ssl/certs/ca-certificates.crt, as GitLab\'s kaniko recipe does', async () => {
      const system = readFileSync(join(rootfs, 'kaniko', 'ssl', 'certs', 'ca-certificates.crt'), 'utf8');
      const untrusted = await warmWith(system);
      assert.notEqual(untrusted.code, 0, 'the registry\'s CA is not in the image\'s bundle');
      assert.match(untrusted.stderr, /not trusted/);
      const trusted = await warmWith(system + (await readFile(registry.caCertPath!, 'utf8')));
      assert.equal(trusted.code, 0, trusted.stderr);
      assert.match(trusted.stdout, new RegExp(`^warmed ${image.replace(/[.]/g, '\\.')} sha256:`));
    });

    // kaniko (Go) reads every file in SSL_CERT_DIR; OpenSSL finds only files named by hash.
    it('trusts a CA file mounted into /kaniko/ssl/certs, as kaniko does', async () => {
      const trusted = await warmWith(await readFile(registry.caCertPath!, 'utf8'), 'registry-ca.crt');
      assert.equal(trusted.code, 0, trusted.stderr);
    });
  });
});
