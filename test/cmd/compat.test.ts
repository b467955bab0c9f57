// Every flag of kaniko v1.23.2's executor (cmd/executor/cmd/root.go) and warmer
// (cmd/warmer/cmd/root.go), written out here from those files, goes through kiln's own
// command-line parser: each is either taken as kaniko takes it (value and default) or
// refused with one "not supported" sentence naming it; none is "unknown", none is dropped.
// The README's kaniko compatibility table is checked against the same list.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseCommandLine } from '../../cmd/kiln.js';
import { KANIKO_ONLY_FLAGS } from '../../cmd/options/compat.js';
import { registryOptionsFromArgs, type RegistryArgs } from '../../cmd/options/registry.js';
import { KilnError } from '../../src/util/errors.js';
import { repositoryRoot } from './repository-root.js';

type Status = 'supported' | 'no-op' | 'default-only' | 'refused';

interface KanikoFlag {
  /** kaniko's spelling. */
  flag: string;
  short?: string;
  /** A boolean: given bare or as `--flag=VALUE`, never `--flag VALUE` (pflag takes no next word for it). */
  bool?: true;
  status: Status;
  /** A value as a pipeline would write it; undefined for a boolean given bare. */
  sample?: string;
  /** For supported flags: the kiln option the flag sets (default: the same name)… */
  key?: string;
  /** …what kiln holds after `--flag sample`… */
  parsed?: unknown;
  /** …and what it holds when the flag is absent: kaniko's default, in kiln's terms (undefined: unset). */
  absent?: unknown;
  /** For default-only flags: kaniko's default, accepted; `sample` is then a value refused. */
  kanikoDefault?: string;
}

const HOST_PLATFORM = undefined; // kaniko's "" means this machine; kiln leaves it unset for the same.

/** cmd/executor/cmd/root.go of kaniko v1.23.2: init(), addKanikoOptionsFlags(), the deprecated flags, cobra's help. */
/** The registry and TLS flags kaniko's executor and warmer share (cmd/options/registry.ts). */
const REGISTRY_FLAGS: KanikoFlag[] = [
  { flag: 'insecure-registry', status: 'supported', sample: 'registry.local:5000', parsed: ['registry.local:5000'], absent: [] },
  { flag: 'skip-tls-verify-registry', status: 'supported', sample: 'registry.local:5000', parsed: ['registry.local:5000'], absent: [] },
  { flag: 'registry-certificate', status: 'supported', sample: 'registry.local=/certs/ca.pem', parsed: ['registry.local=/certs/ca.pem'], absent: [] },
  { flag: 'registry-client-cert', status: 'supported', sample: 'registry.local=/c/cert.pem,/c/key.pem', parsed: ['registry.local=/c/cert.pem,/c/key.pem'], absent: [] },
  { flag: 'registry-map', status: 'supported', sample: 'index.docker.io=mirror.gcr.io', parsed: ['index.docker.io=mirror.gcr.io'], absent: [] },
  { flag: 'registry-mirror', status: 'supported', sample: 'mirror.gcr.io', parsed: ['mirror.gcr.io'], absent: [] },
  { flag: 'skip-default-registry-fallback', bool: true, status: 'supported', parsed: true, absent: false },
];

const EXECUTOR: KanikoFlag[] = [
  { flag: 'verbosity', short: 'v', status: 'supported', sample: 'debug', parsed: 'debug', absent: 'info' },
  { flag: 'log-format', status: 'supported', sample: 'json', parsed: 'json', absent: 'color' },
  { flag: 'log-timestamp', bool: true, status: 'supported', parsed: true, absent: false },
  { flag: 'force', bool: true, status: 'supported', parsed: true, absent: false },
  { flag: 'dockerfile', short: 'f', status: 'supported', sample: 'build/Dockerfile.prod', parsed: 'build/Dockerfile.prod', absent: 'Dockerfile' },
  { flag: 'context', short: 'c', status: 'supported', sample: 'dir:///src', parsed: 'dir:///src', absent: '/workspace/' },
  { flag: 'context-sub-path', status: 'supported', sample: 'app', parsed: 'app', absent: undefined },
  { flag: 'bucket', short: 'b', status: 'refused', sample: 'my-bucket' },
  { flag: 'destination', short: 'd', status: 'supported', sample: 'registry.example.com/app:1', parsed: ['registry.example.com/app:1'], absent: [] },
  { flag: 'snapshot-mode', status: 'supported', sample: 'redo', parsed: 'redo', absent: 'full' },
  { flag: 'custom-platform', status: 'supported', sample: 'linux/arm64', parsed: 'linux/arm64', absent: HOST_PLATFORM },
  { flag: 'build-arg', status: 'supported', sample: 'VERSION=1.2', parsed: ['VERSION=1.2'], absent: [] },
  { flag: 'insecure', bool: true, status: 'supported', parsed: true, absent: false },
  { flag: 'skip-tls-verify', bool: true, status: 'supported', parsed: true, absent: false },
  { flag: 'insecure-pull', bool: true, status: 'supported', parsed: true, absent: false },
  { flag: 'skip-tls-verify-pull', bool: true, status: 'supported', parsed: true, absent: false },
  { flag: 'push-retry', status: 'supported', sample: '3', parsed: 3, absent: 0 },
  { flag: 'push-ignore-immutable-tag-errors', bool: true, status: 'default-only', kanikoDefault: 'false' },
  { flag: 'image-fs-extract-retry', status: 'default-only', sample: '2', kanikoDefault: '0' },
  { flag: 'image-download-retry', status: 'supported', sample: '2', parsed: 2, absent: 0 },
  { flag: 'kaniko-dir', status: 'supported', sample: '/kaniko2', parsed: '/kaniko2', absent: '/kaniko' },
  { flag: 'tar-path', status: 'supported', sample: '/out/image.tar', parsed: '/out/image.tar', absent: undefined },
  { flag: 'single-snapshot', bool: true, status: 'supported', parsed: true, absent: false },
  { flag: 'reproducible', bool: true, status: 'supported', parsed: true, absent: false },
  { flag: 'target', status: 'supported', sample: 'runtime', parsed: 'runtime', absent: undefined },
  { flag: 'no-push', bool: true, status: 'supported', parsed: true, absent: false },
  { flag: 'no-push-cache', bool: true, status: 'supported', parsed: true, absent: false },
  { flag: 'cache-repo', status: 'supported', sample: 'registry.example.com/app/cache', parsed: 'registry.example.com/app/cache', absent: undefined },
  { flag: 'cache-dir', status: 'supported', sample: '/base-images', parsed: '/base-images', absent: '/cache' },
  { flag: 'digest-file', status: 'supported', sample: '/out/digest', parsed: '/out/digest', absent: undefined },
  { flag: 'image-name-with-digest-file', status: 'supported', sample: '/out/name', parsed: '/out/name', absent: undefined },
  { flag: 'image-name-tag-with-digest-file', status: 'supported', sample: '/out/tag', parsed: '/out/tag', absent: undefined },
  { flag: 'oci-layout-path', status: 'supported', sample: '/out/layout', parsed: '/out/layout', absent: undefined },
  { flag: 'compression', status: 'supported', sample: 'zstd', parsed: 'zstd', absent: 'gzip' },
  { flag: 'compression-level', status: 'supported', sample: '9', parsed: 9, absent: -1 },
  { flag: 'cache', bool: true, status: 'supported', parsed: true, absent: false },
  { flag: 'compressed-caching', bool: true, status: 'no-op', sample: 'false' },
  { flag: 'cleanup', bool: true, status: 'supported', parsed: true, absent: false },
  { flag: 'cache-ttl', status: 'supported', sample: '6h', parsed: '6h', absent: '336h' },
  ...REGISTRY_FLAGS,
  { flag: 'ignore-var-run', bool: true, status: 'supported', sample: 'false', parsed: false, absent: true },
  { flag: 'label', status: 'supported', sample: 'team=build', parsed: ['team=build'], absent: [] },
  { flag: 'skip-unused-stages', bool: true, status: 'supported', parsed: true, absent: false },
  { flag: 'use-new-run', bool: true, status: 'default-only', kanikoDefault: 'false' },
  { flag: 'git', status: 'supported', sample: 'branch=main', parsed: ['branch=main'], absent: undefined },
  { flag: 'cache-copy-layers', bool: true, status: 'supported', parsed: true, absent: false },
  { flag: 'cache-run-layers', bool: true, status: 'supported', sample: 'false', parsed: false, absent: true },
  { flag: 'ignore-path', status: 'supported', sample: '/var/cache', parsed: ['/var/cache'], absent: [] },
  { flag: 'force-build-metadata', bool: true, status: 'default-only', kanikoDefault: 'false' },
  { flag: 'skip-push-permission-check', bool: true, status: 'no-op' },
  // Deprecated spellings kaniko still accepts.
  { flag: 'snapshotMode', status: 'supported', key: 'snapshot-mode', sample: 'time', parsed: 'time', absent: 'full' },
  { flag: 'customPlatform', status: 'supported', key: 'custom-platform', sample: 'linux/arm64', parsed: 'linux/arm64', absent: HOST_PLATFORM },
  { flag: 'tarPath', status: 'supported', key: 'tar-path', sample: '/out/image.tar', parsed: '/out/image.tar', absent: undefined },
  { flag: 'whitelist-var-run', bool: true, status: 'supported', key: 'ignore-var-run', sample: 'false', parsed: false, absent: true },
  // Registered into kaniko's global flag set by a vendored package; hidden in its help.
  { flag: 'azure-container-registry-config', status: 'refused', sample: '/etc/acr.json' },
];

/** cmd/warmer/cmd/root.go of kaniko v1.23.2. */
const WARMER: KanikoFlag[] = [
  { flag: 'verbosity', short: 'v', status: 'supported', sample: 'warn', parsed: 'warn', absent: 'info' },
  { flag: 'log-format', status: 'supported', sample: 'text', parsed: 'text', absent: 'color' },
  { flag: 'log-timestamp', bool: true, status: 'supported', parsed: true, absent: false },
  { flag: 'image', short: 'i', status: 'supported', sample: 'debian:bookworm', parsed: ['debian:bookworm'], absent: [] },
  { flag: 'cache-dir', short: 'c', status: 'supported', sample: '/base-images', parsed: '/base-images', absent: '/cache' },
  { flag: 'force', bool: true, short: 'f', status: 'supported', parsed: true, absent: false },
  { flag: 'cache-ttl', status: 'supported', sample: '24h', parsed: '24h', absent: '336h' },
  { flag: 'insecure-pull', bool: true, status: 'supported', parsed: true, absent: false },
  { flag: 'skip-tls-verify-pull', bool: true, status: 'supported', parsed: true, absent: false },
  ...REGISTRY_FLAGS,
  // The warmer only has the camelCase spelling.
  { flag: 'customPlatform', status: 'supported', key: 'custom-platform', sample: 'linux/arm64', parsed: 'linux/arm64', absent: HOST_PLATFORM },
  { flag: 'dockerfile', short: 'd', status: 'supported', sample: '/workspace/Dockerfile', parsed: '/workspace/Dockerfile', absent: undefined },
  { flag: 'build-arg', status: 'supported', sample: 'BASE=debian', parsed: ['BASE=debian'], absent: [] },
  { flag: 'azure-container-registry-config', status: 'refused', sample: '/etc/acr.json' },
];

const TOOLS = [
  { name: 'executor', command: 'build', flags: EXECUTOR },
  { name: 'warmer', command: 'warm', flags: WARMER },
] as const;

/** Every way a pipeline may write the flag with `value` (undefined: a boolean given bare), as pflag reads them. */
function forms(row: KanikoFlag, value = row.sample): string[][] {
  const short = row.short ? `-${row.short}` : undefined;
  if (row.bool) {
    if (value === undefined) return [[`--${row.flag}`], [`--${row.flag}=true`], ...(short ? [[short]] : [])];
    return [[`--${row.flag}=${value}`]];
  }
  return [[`--${row.flag}`, value!], [`--${row.flag}=${value!}`], ...(short ? [[short, value!], [`${short}${value!}`]] : [])];
}

async function refusal(argv: string[]): Promise<KilnError> {
  try {
    await parseCommandLine(argv);
  } catch (err) {
    assert.ok(err instanceof KilnError, `${argv.join(' ')}: expected a KilnError, got ${String(err)}`);
    return err;
  }
  assert.fail(`${argv.join(' ')} was accepted; kiln must refuse it`);
}

function assertRefusedByName(err: KilnError, flag: string): void {
  assert.equal(err.code, 'USAGE');
  assert.match(err.message, /not supported/);
  assert.ok(err.message.includes(`--${flag}`), `the refusal names --${flag}: ${err.message}`);
  assert.doesNotMatch(err.message, /unknown/i);
  // One sentence: it ends once, with a full stop.
  assert.match(err.message, /^[^\n]+\.$/);
}

// Environment variables that change defaults; the table's defaults are kaniko's without them.
const ENV = ['KANIKO_DIR', 'KANIKO_NO_PUSH'] as const;
const saved = new Map<string, string | undefined>();
before(() => {
  for (const name of ENV) {
    saved.set(name, process.env[name]);
    delete process.env[name];
  }
});
after(() => {
  for (const [name, value] of saved) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

for (const tool of TOOLS) {
  describe(`kaniko's ${tool.name} flags through kiln ${tool.command}`, () => {
    for (const row of tool.flags) {
      const name = `--${row.flag}${row.short ? ` (-${row.short})` : ''}`;
      if (row.status === 'supported') {
        it(`${name} sets ${row.key ?? row.flag} as kaniko does, with kaniko's default`, async () => {
          const key = row.key ?? row.flag;
          for (const words of forms(row)) {
            const { args } = await parseCommandLine([tool.command, ...words]);
            assert.deepEqual(args[key], row.parsed, `${words.join(' ')} → ${key}`);
          }
          const { args } = await parseCommandLine([tool.command]);
          assert.deepEqual(args[key], row.absent, `the default of --${row.flag}`);
        });
      } else if (row.status === 'no-op') {
        it(`${name} is accepted as a documented no-op`, async () => {
          for (const words of [...forms(row), ...forms(row, 'false')]) {
            const { command } = await parseCommandLine([tool.command, ...words]);
            assert.equal(command, tool.command, words.join(' '));
          }
          const documented = KANIKO_ONLY_FLAGS.some((f) => f.name === row.flag && f.handling === 'no-op') || row.flag === 'compressed-caching';
          assert.ok(documented, `--${row.flag} is listed as a no-op`);
        });
      } else if (row.status === 'default-only') {
        it(`${name} is accepted at kaniko's default (${row.kanikoDefault!}) and refused by name otherwise`, async () => {
          await parseCommandLine([tool.command, `--${row.flag}=${row.kanikoDefault!}`]);
          for (const words of forms(row)) assertRefusedByName(await refusal([tool.command, ...words]), row.flag);
        });
      } else {
        it(`${name} is refused by name`, async () => {
          for (const words of forms(row)) assertRefusedByName(await refusal([tool.command, ...words]), row.flag);
        });
      }
    }

    it('-h and --help print the help, as cobra does', async () => {
      for (const flag of ['-h', '--help']) {
        const { help } = await parseCommandLine([tool.command, flag]);
        assert.match(help ?? '', new RegExp(`kiln ${tool.command}`));
      }
    });

    it('a flag kaniko does not have is reported as unknown (the checks above can tell)', async () => {
      const err = await refusal([tool.command, '--no-such-kaniko-flag']);
      assert.match(err.message, /unknown flag --no-such-kaniko-flag/);
    });
  });
}

describe('kiln\'s table of kaniko-only flags', () => {
  it('holds only flags kaniko v1.23.2 has, for the commands that have them', () => {
    for (const flag of KANIKO_ONLY_FLAGS) {
      for (const command of flag.commands) {
        const tool = TOOLS.find((t) => t.command === command)!;
        const row = tool.flags.find((r) => r.flag === flag.name);
        assert.ok(row, `--${flag.name} is not a flag of kaniko's ${tool.name}`);
        assert.equal(row.status, flag.handling, `--${flag.name}`);
        assert.equal(row.short, flag.shorthand, `--${flag.name}'s shorthand`);
      }
    }
  });
});

describe('pflag forms of a kaniko command line', () => {
  it('reads -fFILE, -d=IMAGE, -vLEVEL and clustered warmer booleans as pflag does', async () => {
    const build = await parseCommandLine(['build', '-fDockerfile.prod', '-d=registry.example.com/a:1', '-d', 'registry.example.com/b:1', '-vdebug']);
    assert.equal(build.args.dockerfile, 'Dockerfile.prod');
    assert.deepEqual(build.args.destination, ['registry.example.com/a:1', 'registry.example.com/b:1']);
    assert.equal(build.args.verbosity, 'debug');
    const warm = await parseCommandLine(['warm', '-fi', 'debian:bookworm', '-c/base']);
    assert.equal(warm.args.force, true);
    assert.deepEqual(warm.args.image, ['debian:bookworm']);
    assert.equal(warm.args['cache-dir'], '/base');
  });

  it('keeps the last of a repeated single-valued flag, and every value of a repeatable one', async () => {
    const { args } = await parseCommandLine(['build', '--dockerfile', 'a', '--dockerfile=b', '--snapshot-mode', 'redo', '--snapshotMode', 'time', '--label', 'a=1', '--label', 'b=2']);
    assert.equal(args.dockerfile, 'b');
    assert.equal(args['snapshot-mode'], 'time');
    assert.deepEqual(args.label, ['a=1', 'b=2']);
  });

  it('gives a flag the next word as its value even when it starts with a dash', async () => {
    const { args } = await parseCommandLine(['build', '--label', '-x=1', '--compression-level', '-1']);
    assert.deepEqual(args.label, ['-x=1']);
    assert.equal(args['compression-level'], -1);
  });

  it('takes log levels as kaniko (logrus) does: any case, and warning for warn', async () => {
    assert.equal((await parseCommandLine(['build', '--verbosity=WARNING'])).args.verbosity, 'warn');
    assert.equal((await parseCommandLine(['warm', '-v', 'Debug'])).args.verbosity, 'debug');
  });

  it('names the flag and the values it takes when a value is not one of them', async () => {
    const err = await refusal(['build', '--snapshot-mode', 'fast']);
    assert.equal(err.message, '--snapshot-mode=fast is not one of full, redo, time; give one of those.');
  });

  it('refuses a stray word naming it as an argument, not as a flag', async () => {
    const err = await refusal(['build', '--destination', 'registry.example.com/a:1', 'registry.example.com/b:1']);
    assert.match(err.message, /unexpected argument "registry\.example\.com\/b:1"/);
  });
});

describe('environment variables kaniko reads', () => {
  const withEnv = async <T>(name: string, value: string, run: () => Promise<T>): Promise<T> => {
    const old = process.env[name];
    process.env[name] = value;
    try {
      return await run();
    } finally {
      if (old === undefined) delete process.env[name];
      else process.env[name] = old;
    }
  };

  it('KANIKO_DIR is the default of --kaniko-dir; the flag wins', async () => {
    await withEnv('KANIKO_DIR', '/kiln-home', async () => {
      assert.equal((await parseCommandLine(['build'])).args['kaniko-dir'], '/kiln-home');
      assert.equal((await parseCommandLine(['build', '--kaniko-dir', '/other'])).args['kaniko-dir'], '/other');
    });
  });

  it('KANIKO_NO_PUSH takes Go\'s boolean spellings and sets --no-push\'s default', async () => {
    for (const [value, expected] of [['true', true], ['1', true], ['T', true], ['false', false], ['0', false]] as const) {
      await withEnv('KANIKO_NO_PUSH', value, async () => {
        assert.equal((await parseCommandLine(['build'])).args['no-push'], expected, `KANIKO_NO_PUSH=${value}`);
      });
    }
    await withEnv('KANIKO_NO_PUSH', 'true', async () => {
      assert.equal((await parseCommandLine(['build', '--no-push=false'])).args['no-push'], false);
    });
  });

  it('KANIKO_REGISTRY_MIRROR and KANIKO_REGISTRY_MAP come after the flags, for the executor and the warmer', async () => {
    const env = { KANIKO_REGISTRY_MIRROR: 'env-mirror.example', KANIKO_REGISTRY_MAP: 'gcr.io=env-map.example' };
    for (const command of ['build', 'warm']) {
      const { args } = await parseCommandLine([command, '--registry-mirror', 'flag-mirror.example', '--registry-map', 'gcr.io=flag-map.example']);
      const options = registryOptionsFromArgs(args as unknown as RegistryArgs, env);
      assert.deepEqual(options.registryMirrors.map((m) => m.host), ['flag-mirror.example', 'env-mirror.example'], command);
      assert.deepEqual(options.registryMaps['gcr.io']?.map((m) => m.host), ['flag-map.example', 'env-map.example'], command);
    }
  });

  it('refuses a KANIKO_NO_PUSH that is not a boolean, naming it', async () => {
    await withEnv('KANIKO_NO_PUSH', 'yes please', async () => {
      const err = await refusal(['build']);
      assert.match(err.message, /^KANIKO_NO_PUSH=yes please is not a boolean/);
    });
  });
});

describe('the README\'s kaniko compatibility tables', () => {
  const readme = readFileSync(join(repositoryRoot(), 'README.md'), 'utf8');
  /** flag → the "in kiln" cell, from the table under `heading`. */
  const table = (heading: string): Map<string, string> => {
    const start = readme.indexOf(`\n${heading}`);
    assert.ok(start >= 0, `the README has a "${heading.trim()}" section`);
    const body = readme.slice(start + heading.length + 1).split(/\n#/)[0]!;
    const rows = new Map<string, string>();
    for (const match of body.matchAll(/^\| `--([A-Za-z-]+)`[^|]*\|([^|]*)\|/gm)) rows.set(match[1]!, match[2]!.trim());
    return rows;
  };
  const words: Record<Status, RegExp> = {
    supported: /^(yes|yes, alias of `--[a-z-]+`)$/,
    'no-op': /^accepted, no effect$/,
    'default-only': /^only `=[a-z0-9]+`$/,
    refused: /^not supported$/,
  };
  const headings = { executor: '### Executor flags', warmer: '### Warmer flags' } as const;

  for (const tool of TOOLS) {
    it(`has a row for every flag of kaniko's ${tool.name}, saying what kiln does with it`, () => {
      const rows = table(headings[tool.name]);
      for (const row of tool.flags) {
        const cell = rows.get(row.flag);
        assert.ok(cell !== undefined, `the README lists --${row.flag}`);
        assert.match(cell, words[row.status], `the README's status of --${row.flag}`);
      }
      // -h/--help is cobra's; the table has it as well.
      assert.equal(rows.get('help'), 'yes');
      const kaniko = new Set(tool.flags.map((r) => r.flag));
      for (const [flag, cell] of rows) {
        if (!kaniko.has(flag) && flag !== 'help') assert.equal(cell, 'kiln only', `--${flag} is no flag of kaniko's ${tool.name}`);
      }
    });
  }

  it('counts the flags as the tables do', () => {
    // Each table adds cobra's -h/--help to the flags root.go defines.
    const all = (flags: KanikoFlag[]) => flags.length + 1;
    const having = (flags: KanikoFlag[], status: Status) => flags.filter((r) => r.status === status).length + (status === 'supported' ? 1 : 0);
    const aliases = EXECUTOR.filter((r) => r.key !== undefined).length;
    const text = readme.replace(/\s+/g, ' ');
    const executor = `Of the ${all(EXECUTOR)} flags of kaniko's executor, ${having(EXECUTOR, 'supported')} work as in kaniko (${aliases} of them old spellings), ${having(EXECUTOR, 'no-op')} are accepted with no effect, ${having(EXECUTOR, 'default-only')} are accepted at kaniko's default only and ${having(EXECUTOR, 'refused')} are refused`;
    assert.ok(text.includes(executor), `the README says: ${executor}`);
    const warmer = `all ${all(WARMER)} of its warmer's flags but ${all(WARMER) - having(WARMER, 'supported')} work as in kaniko`;
    assert.ok(text.includes(warmer), `the README says: ${warmer}`);
  });
});
