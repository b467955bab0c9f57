// kaniko's deployment model, for real: kiln's executor image (built by kiln, see
// harness/executor-image.ts) runs as a pod would run it (harness/pod.ts: uid 0, the runtime's
// default capabilities, no privileges, kubelet's mounts), with the build context mounted at
// /workspace and registry credentials at /kaniko/.docker/config.json. Under the default
// `--isolation none` the Debian base image is extracted into the container's own `/` and
// each RUN runs there. The pushed image is then run with runc, and a second pod (a fresh
// container) builds the same Dockerfile from the registry cache alone.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { busyboxLayout, debianLayout, pullToLayout, pushLayout, runImage, skopeoInspect, startRegistry, type RunningRegistry } from './harness/index.js';
import { executorImage, type ExecutorImage } from './harness/executor-image.js';
import { layerEntries } from './harness/layers.js';
import { runPod, type PodRun } from './harness/pod.js';

const isRoot = process.getuid?.() === 0;

/** Paths of the pod, of kiln, or of the kernel, which no layer kiln writes may hold. */
const FOREIGN = [
  /^kaniko(\/|$)/, /^workspace\//, /^proc\//, /^sys\//, /^dev\//, /^var\/run\//, /^run\//,
  /^etc\/(hosts|hostname|resolv\.conf)$/, /^tmp\/kiln/, /^cache(\/|$)/, /^root\/\.docker/,
];

const APP = `#!/bin/sh
cat /greeting /data/note
id
`;

describe('kiln\'s executor image in a pod', { skip: isRoot ? false : 'needs root (runc and umoci unpack as a kubelet would)', timeout: 600_000 }, () => {
  let registry: RunningRegistry;
  let executor: ExecutorImage;
  let work: string;
  let context: string;
  let dockerConfig: string;
  let first: PodRun;
  let firstDigest: string;
  const destination = () => `${registry.host}/pod/app:1`;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'kiln-pod-test-'));
    [registry, executor] = await Promise.all([startRegistry('basic'), executorImage()]);
    const [debian, busybox] = await Promise.all([debianLayout(), busyboxLayout()]);
    await pushLayout(debian.dir, debian.tag, registry, 'base/debian:bookworm');
    await pushLayout(busybox.dir, busybox.tag, registry, 'base/busybox:1');

    context = join(work, 'context');
    await mkdir(context);
    await writeFile(join(context, 'app.sh'), APP);
    await writeFile(join(context, 'Dockerfile'), [
      `FROM ${registry.host}/base/debian:bookworm`,
      'ARG GREETING=hello',
      // Without the base image's setpriv (alpine and distroless have none), kiln uses its own.
      'RUN useradd --create-home --groups users app && echo "$GREETING from kiln" > /greeting && rm /usr/bin/setpriv',
      'COPY app.sh /usr/local/bin/app.sh',
      'RUN chmod 0755 /usr/local/bin/app.sh && mkdir /data && chown app:app /data',
      'USER app',
      // Runs as app with a supplementary group: kiln sets groups through setpriv.
      'RUN echo "written by $(id -un) in $(id -Gn)" > /data/note',
      'WORKDIR /data',
      'CMD ["/usr/local/bin/app.sh"]',
      '',
    ].join('\n'));
    dockerConfig = join(work, 'config.json');
    const auth = Buffer.from(`${registry.username}:${registry.password}`).toString('base64');
    await writeFile(dockerConfig, JSON.stringify({ auths: { [registry.host]: { auth } } }));
  });

  after(async () => {
    await registry?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** One pod: the executor with kaniko's usual arguments and the cache in the registry. */
  function buildPod(): Promise<PodRun> {
    return runPod({
      layout: executor.runnable,
      tag: 'latest',
      args: ['--dockerfile=Dockerfile', `--destination=${destination()}`, '--cache=true', `--cache-repo=${registry.host}/pod/cache`, '--cache-copy-layers=true'],
      mounts: [
        { source: context, destination: '/workspace' },
        { source: dockerConfig, destination: '/kaniko/.docker/config.json', readonly: true },
      ],
    });
  }

  it('builds the Dockerfile in its own / and pushes the image', async () => {
    first = await buildPod();
    assert.equal(first.code, 0, `the executor failed:\n${first.stderr}`);
    firstDigest = first.stdout.trim().split('\n').pop()!;
    assert.match(firstDigest, /^sha256:[0-9a-f]{64}$/);
    assert.match(first.stderr, /cache miss/, 'the first build found an empty cache');
    const inspected = await skopeoInspect(registry, 'pod/app:1');
    assert.equal(inspected.Digest, firstDigest);
  });

  it('pushed an image that runs, with nothing of the pod or of kiln in its layers', async () => {
    assert.ok(firstDigest, 'the first build did not finish');
    const layout = join(work, 'pushed');
    await pullToLayout(registry, 'pod/app:1', layout, 'app');
    const ran = await runImage(layout, 'app');
    assert.equal(ran.code, 0, ran.stderr);
    assert.equal(ran.stdout, 'hello from kiln\nwritten by app in app users\nuid=1000(app) gid=1000(app) groups=1000(app),100(users)\n');

    const layers = await layerEntries(layout, 'app');
    const added = layers.slice(1);
    assert.equal(added.length, 4, 'one layer per RUN and COPY (WORKDIR /data exists already)');
    const foreign = added.flat().filter((name) => FOREIGN.some((pattern) => pattern.test(name)));
    assert.deepEqual(foreign, [], 'layers kiln wrote hold files of the pod or of kiln');
    assert.deepEqual(added[1]!.filter((n) => !n.endsWith('/')), ['usr/local/bin/app.sh'], 'the COPY layer holds exactly the copied file');
  });

  it('builds again in a fresh pod from the registry cache alone', async () => {
    assert.ok(firstDigest, 'the first build did not finish');
    const second = await buildPod();
    assert.equal(second.code, 0, `the executor failed:\n${second.stderr}`);
    assert.doesNotMatch(second.stderr, /cache miss/);
    // RUN, COPY, RUN, RUN and WORKDIR: every step with a key.
    assert.equal([...second.stderr.matchAll(/Dockerfile:\d+: cache hit/g)].length, 5, second.stderr);
    assert.doesNotMatch(second.stderr, /extracted \d+ layers/, 'a build served by the cache extracts nothing');
    const [one, two] = await Promise.all([
      skopeoInspect(registry, `pod/app@${firstDigest}`),
      skopeoInspect(registry, 'pod/app:1'),
    ]);
    assert.deepEqual(two.Layers, one.Layers, 'the second image reuses the first one\'s layers');
  });

  // GitLab's recipe: the debug image's shell runs the executor once per image, with --cleanup
  // between builds, in the project directory (a mount) rather than /workspace.
  it('builds twice in one container, each image holding only its own step', async () => {
    const dir = join(work, 'two-builds');
    await mkdir(dir);
    await writeFile(join(dir, 'one.Dockerfile'), `FROM ${registry.host}/base/busybox:1\nRUN echo one > /one && mkdir -p /run/kiln && echo one > /run/kiln/one\n`);
    await writeFile(join(dir, 'two.Dockerfile'), `FROM ${registry.host}/base/busybox:1\nRUN test ! -e /one && echo two > /two\n`);
    const executorArgs = (name: string) => `--context=/src --dockerfile=${name}.Dockerfile --destination=${registry.host}/pod/${name}:1`;
    const ran = await runPod({
      layout: executor.runnable,
      tag: 'debug',
      command: ['/busybox/sh', '-c', `cd /src && executor ${executorArgs('one')} --cleanup && executor ${executorArgs('two')}`],
      mounts: [
        { source: dir, destination: '/src' },
        { source: dockerConfig, destination: '/kaniko/.docker/config.json', readonly: true },
      ],
    });
    assert.equal(ran.code, 0, ran.stderr);
    for (const [name, files] of [['one', ['one', 'run/', 'run/kiln/', 'run/kiln/one']], ['two', ['two']]] as const) {
      const layout = join(dir, `pulled-${name}`);
      await pullToLayout(registry, `pod/${name}:1`, layout, name);
      assert.deepEqual((await layerEntries(layout, name)).slice(1), [files], `the layers of ${name}`);
    }
  });
  // kaniko's model with several stages: each stage is built in the same `/`, emptied between
  // them; what a later stage copies from an earlier one is set aside first.
  it('builds several stages in its own /, each on a clean /', async () => {
    const dir = join(work, 'stages');
    await mkdir(dir);
    await writeFile(join(dir, 'Dockerfile'), [
      `FROM ${registry.host}/base/debian:bookworm AS builder`,
      'RUN mkdir /out && echo "built on $(. /etc/os-release && echo $ID)" > /out/artifact && echo junk > /junk',
      `FROM ${registry.host}/base/busybox:1`,
      'RUN test ! -e /junk && test ! -e /etc/os-release && echo clean > /clean',
      'COPY --from=builder /out/artifact /artifact',
      'CMD ["cat", "/artifact", "/clean"]',
      '',
    ].join('\n'));
    const ran = await runPod({
      layout: executor.runnable,
      tag: 'latest',
      args: ['--dockerfile=Dockerfile', `--destination=${registry.host}/pod/stages:1`],
      mounts: [
        { source: dir, destination: '/workspace' },
        { source: dockerConfig, destination: '/kaniko/.docker/config.json', readonly: true },
      ],
    });
    assert.equal(ran.code, 0, `the executor failed:\n${ran.stderr}`);
    const layout = join(dir, 'pulled');
    await pullToLayout(registry, 'pod/stages:1', layout, 'stages');
    const run = await runImage(layout, 'stages');
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, 'built on debian\nclean\n');
    const added = (await layerEntries(layout, 'stages')).slice(1);
    assert.deepEqual(added, [['clean'], ['artifact']], 'the final stage holds only its own steps');
  });
});
