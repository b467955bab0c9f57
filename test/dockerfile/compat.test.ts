import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDockerfile } from '../../src/dockerfile/parse.js';
import type { Instruction } from '../../src/dockerfile/types.js';

/**
 * Dockerfiles shaped like the ones in BuildKit's parser test files (tabs after keywords, tab-
 * indented continuations, the legacy ENV/LABEL form, bash-only syntax in RUN), with the
 * arguments BuildKit's parser produces for them.
 */
const DOCKERFILE = [
  '# A comment block at the top',
  '#',
  '# docker run -v `pwd`:/src -i -t image bash',
  '',
  'FROM\tubuntu:14.04',
  'LABEL\tmaintainer\tJane Doe <jane@example.com> (@jane)',
  '',
  '# Packaged dependencies',
  'RUN\tapt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -yq \\',
  '\tapt-utils \\',
  '\tcurl \\',
  '\ts3cmd=1.1.0* \\',
  '\t--no-install-recommends',
  '',
  'ENV\tPATH\t/usr/local/go/bin:$PATH',
  'ENV\tCROSS\t\\',
  '\tlinux/386 linux/arm \\',
  '\tdarwin/amd64 darwin/386',
  "RUN\tcd /src && bash -xc 'for p in $CROSS; do GOOS=${p%/*} GOARCH=${p##*/} ./make.bash; done'",
  "RUN\t/bin/echo -e '[default]\\naccess_key=$AWS_ACCESS_KEY' > /.s3cfg",
  `RUN /bin/bash -c 'source /etc/lsb-release && echo "deb https://repos.example.com/\${DISTRIB_ID,,} \${DISTRIB_CODENAME} stable"' | tee "/etc/apt/sources.list.d/x.list"`,
  'VOLUME\t/var/lib/docker',
  'WORKDIR\t/go/src/github.com/docker/docker',
  'ENV\tDOCKER_BUILDTAGS\tapparmor selinux',
  'ENTRYPOINT\t["hack/dind"]',
  'COPY\t.\t/go/src/github.com/docker/docker',
  'CMD service influxdb start',
  'EXPOSE 8086',
  'EXPOSE 8089/udp',
  'HEALTHCHECK --interval=5s --timeout=3s --retries=3 \\',
  '  CMD /app/check.sh --quiet',
  'HEALTHCHECK   CMD   a b',
  'HEALTHCHECK --timeout=3s CMD ["foo"]',
  'HEALTHCHECK --start-period=0s --interval=5s --timeout=0s --retries=0 CMD ["foo"]',
].join('\n');

const sortedJson = (value: Record<string, unknown>): string => JSON.stringify(value, Object.keys(value).sort());

/** Each instruction reduced to the words BuildKit's parser dump shows for it. */
function dump(instruction: Instruction): string[] {
  switch (instruction.kind) {
    case 'from':
      return ['from', instruction.image];
    case 'label':
    case 'env':
      return [instruction.kind, ...instruction.pairs.flatMap(({ key, value }) => [key, value])];
    case 'run':
    case 'cmd':
    case 'entrypoint':
      return [instruction.kind, ...(instruction.command.form === 'shell' ? [instruction.command.text] : instruction.command.args)];
    case 'volume':
      return ['volume', ...instruction.paths];
    case 'workdir':
      return ['workdir', instruction.path];
    case 'copy':
      return ['copy', ...instruction.sources, instruction.dest];
    case 'expose':
      return ['expose', ...instruction.ports];
    case 'healthcheck': {
      const { check } = instruction;
      if (check.type === 'none') return ['healthcheck', 'NONE'];
      const { type, command, ...options } = check;
      const cmd = command.form === 'shell' ? [command.text] : command.args;
      return ['healthcheck', sortedJson(options), type.toUpperCase(), ...cmd];
    }
    default:
      return [instruction.kind];
  }
}

test('Dockerfiles shaped like BuildKit\'s parser test files give the same arguments', () => {
  const df = parseDockerfile(DOCKERFILE, 'Dockerfile');
  const stage = df.stages[0]!;
  const dumped = [dump(stage.from), ...stage.instructions.map(dump)];
  assert.deepEqual(dumped, [
    ['from', 'ubuntu:14.04'],
    ['label', 'maintainer', 'Jane Doe <jane@example.com> (@jane)'],
    ['run', 'apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -yq \tapt-utils \tcurl \ts3cmd=1.1.0* \t--no-install-recommends'],
    ['env', 'PATH', '/usr/local/go/bin:$PATH'],
    ['env', 'CROSS', 'linux/386 linux/arm \tdarwin/amd64 darwin/386'],
    ['run', "cd /src && bash -xc 'for p in $CROSS; do GOOS=${p%/*} GOARCH=${p##*/} ./make.bash; done'"],
    ['run', "/bin/echo -e '[default]\\naccess_key=$AWS_ACCESS_KEY' > /.s3cfg"],
    ['run', `/bin/bash -c 'source /etc/lsb-release && echo "deb https://repos.example.com/\${DISTRIB_ID,,} \${DISTRIB_CODENAME} stable"' | tee "/etc/apt/sources.list.d/x.list"`],
    ['volume', '/var/lib/docker'],
    ['workdir', '/go/src/github.com/docker/docker'],
    ['env', 'DOCKER_BUILDTAGS', 'apparmor selinux'],
    ['entrypoint', 'hack/dind'],
    ['copy', '.', '/go/src/github.com/docker/docker'],
    ['cmd', 'service influxdb start'],
    ['expose', '8086'],
    ['expose', '8089/udp'],
    ['healthcheck', sortedJson({ interval: 5e9, timeout: 3e9, retries: 3 }), 'CMD', '/app/check.sh --quiet'],
    ['healthcheck', '{}', 'CMD', 'a b'],
    ['healthcheck', sortedJson({ timeout: 3e9 }), 'CMD', 'foo'],
    ['healthcheck', sortedJson({ interval: 5e9, startPeriod: 0, timeout: 0, retries: 0 }), 'CMD', 'foo'],
  ]);
  assert.deepEqual(
    [stage.from.line, ...stage.instructions.map((instruction) => `${instruction.line}-${instruction.endLine}`)].slice(0, 6),
    [5, '6-6', '9-13', '15-15', '16-18', '19-19'],
  );
});
