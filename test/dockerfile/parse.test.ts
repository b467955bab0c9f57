import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDockerfile } from '../../src/dockerfile/parse.js';
import { runScriptOf } from '../../src/dockerfile/run-script.js';
import type { Instruction, RunInstruction } from '../../src/dockerfile/types.js';
import { isKilnError } from '../../src/util/errors.js';

const lines = (...text: string[]): string => text.join('\n') + '\n';

/** The instructions of the first stage of `FROM scratch` followed by the given lines. */
function body(...text: string[]): Instruction[] {
  return parseDockerfile(lines('FROM scratch', ...text), 'Dockerfile').stages[0]!.instructions;
}

function only<K extends Instruction['kind']>(kind: K, ...text: string[]): Extract<Instruction, { kind: K }> {
  const [instruction] = body(...text);
  assert.equal(instruction?.kind, kind);
  return instruction as Extract<Instruction, { kind: K }>;
}

/** Asserts a Dockerfile error: `<file>:<line>: <what>; <what to do>.` */
function assertDockerfileError(text: string, line: number, pattern: RegExp, file = 'Dockerfile'): void {
  assert.throws(
    () => parseDockerfile(text, file),
    (err: unknown) => {
      assert.ok(isKilnError(err, 'DOCKERFILE'), String(err));
      const prefix = `${file}:${line}: `;
      assert.ok(err.message.startsWith(prefix), `"${err.message}" should start with "${prefix}"`);
      assert.match(err.message, pattern);
      assert.match(err.message, /; .+\.$/, `"${err.message}" should say what to do and end with a full stop`);
      return true;
    },
    text,
  );
}

// --- the pitfalls of dockerfile-ast 0.7.1 (see FINDINGS) ---

test('exec form is JSON.parse of the argument text: spaces and escapes survive', () => {
  const cmd = only('cmd', 'CMD ["echo", "a  b", "tab\\there", "quote\\"q", "back\\\\slash", "\\u00e9"]');
  assert.deepEqual(cmd.command, { form: 'exec', args: ['echo', 'a  b', 'tab\there', 'quote"q', 'back\\slash', 'é'] });
  assert.deepEqual(only('entrypoint', 'ENTRYPOINT [ "/bin/app" , "--flag" ]  ').command, { form: 'exec', args: ['/bin/app', '--flag'] });
  assert.deepEqual(only('cmd', 'CMD []').command, { form: 'exec', args: [] });
});

test('invalid JSON is shell form, as in Docker; a JSON array of non-strings is an error', () => {
  assert.deepEqual(only('cmd', 'CMD [echo, hi]').command, { form: 'shell', text: '[echo, hi]' });
  assert.deepEqual(only('run', "RUN ['single', 'quotes']").command, { form: 'shell', text: "['single', 'quotes']" });
  assert.deepEqual(only('run', 'RUN ["a" "b"]').command, { form: 'shell', text: '["a" "b"]' });
  assertDockerfileError(lines('FROM a', 'RUN ["sleep", 1]'), 2, /array of strings only/);
});

test('comment lines inside a continuation are dropped, not kept as arguments', () => {
  const run = only('run', 'RUN apt-get update && \\', '    # install things', '  # more', '    apt-get install -y curl');
  assert.deepEqual(run.command, { form: 'shell', text: 'apt-get update &&     apt-get install -y curl' });
  assert.equal(run.line, 2);
  assert.equal(run.endLine, 5);
  assert.equal(run.original, 'RUN apt-get update &&     apt-get install -y curl');
});

test('heredoc bodies are not arguments; <<- strips tabs; a quoted delimiter turns expansion off', () => {
  const run = only('run', 'RUN <<EOF cat > /x', 'RUN not-an-instruction', 'EOF');
  assert.deepEqual(run.command, { form: 'shell', text: '<<EOF cat > /x' });
  assert.deepEqual(run.heredocs, [{ name: 'EOF', body: 'RUN not-an-instruction\n', stripTabs: false, expand: true }]);

  const chomped = only('run', 'RUN <<-EOT', '\techo $X', '\t\t  indented', '\tEOT');
  assert.deepEqual(chomped.heredocs, [{ name: 'EOT', body: 'echo $X\n  indented\n', stripTabs: true, expand: true }]);

  for (const delimiter of ["'EOF'", '"EOF"', 'E"O"F', "'E'OF"]) {
    const quoted = only('copy', `COPY <<${delimiter} /x`, '$HOME', 'EOF');
    assert.deepEqual(quoted.inline, [{ name: 'EOF', body: '$HOME\n', stripTabs: false, expand: false }], delimiter);
  }
});

test('an escaped escape character at the end of a line does not continue it', () => {
  const [first, second] = body('RUN echo foo \\\\', 'RUN echo bar');
  assert.deepEqual(first?.kind === 'run' && first.command, { form: 'shell', text: 'echo foo \\\\' });
  assert.deepEqual(second?.kind === 'run' && second.command, { form: 'shell', text: 'echo bar' });
});

test('JSON-form RUN never opens a heredoc', () => {
  const [json, next] = body('RUN ["sh", "-c", "cat <<EOF"]', 'RUN echo after');
  assert.deepEqual(json?.kind === 'run' && json.heredocs, []);
  assert.equal(next?.kind, 'run');
});

test('an unterminated heredoc is an error at the line that opens it', () => {
  assertDockerfileError(lines('FROM a', 'RUN <<EOF', 'echo hi'), 2, /heredoc <<EOF is never terminated; end it with a line that holds only EOF\./);
  assertDockerfileError(lines('FROM a', 'COPY <<-END /x', 'text', 'END '), 2, /<<-END is never terminated/);
});

test('an escape directive after an unknown directive is a plain comment', () => {
  const df = parseDockerfile(lines('# foo=bar', '# escape=`', 'FROM a', 'RUN a \\', 'RUN b'), 'Dockerfile');
  assert.equal(df.escape, '\\');
  assert.equal(df.stages[0]!.instructions.length, 1);
});

test('unknown flags and flags of another instruction are refused', () => {
  assertDockerfileError(lines('FROM a', 'COPY --checksum=sha256:00 a /b'), 2, /--checksum is a flag of ADD, not of COPY; remove it \(COPY takes --from, --chown, --chmod, --link, --parents, --exclude\)\./);
  assertDockerfileError(lines('FROM a', 'ADD --from=build a /b'), 2, /--from is a flag of COPY, not of ADD/);
  assertDockerfileError(lines('FROM a', 'RUN --mont=type=cache,target=/x make'), 2, /unknown flag --mont on RUN; RUN takes --mount, --network, --security\./);
  assertDockerfileError(lines('FROM a', 'WORKDIR --chown=1 /x'), 2, /WORKDIR takes no flags, but --chown was given; remove it\./);
  assertDockerfileError(lines('FROM a', 'CMD --help'), 2, /CMD takes no flags, but --help was given/);
  assertDockerfileError(lines('FROM --platfrom=linux/amd64 a'), 1, /unknown flag --platfrom on FROM; FROM takes --platform\./);
});

// --- parser directives ---

test('the escape directive makes the backtick the escape and continuation character', () => {
  const df = parseDockerfile(
    lines('# escape=`', 'FROM mcr.microsoft.com/windows/servercore', 'COPY testfile.txt c:\\', 'RUN dir c:\\ `', '    /b', 'ENV A="x`"y" B=c\\d'),
    'Dockerfile',
  );
  assert.equal(df.escape, '`');
  const [copy, run, env] = df.stages[0]!.instructions;
  assert.deepEqual(copy?.kind === 'copy' && [copy.sources, copy.dest], [['testfile.txt'], 'c:\\']);
  assert.deepEqual(run?.kind === 'run' && run.command, { form: 'shell', text: 'dir c:\\     /b' });
  assert.deepEqual(env?.kind === 'env' && env.pairs, [{ key: 'A', value: '"x`"y"' }, { key: 'B', value: 'c\\d' }]);
});

test('syntax and check directives are accepted; directives stop at the first other line', () => {
  const df = parseDockerfile(lines('# syntax=docker/dockerfile:1.7', '#check=skip=all', ' # ESCAPE = `', 'FROM a'), 'Dockerfile');
  assert.deepEqual(df.directives, [
    { name: 'syntax', value: 'docker/dockerfile:1.7', line: 1 },
    { name: 'check', value: 'skip=all', line: 2 },
    { name: 'escape', value: '`', line: 3 },
  ]);
  assert.equal(parseDockerfile(lines('# a comment', '# escape=`', 'FROM a'), 'Dockerfile').escape, '\\');
  assert.equal(parseDockerfile(lines('', '# escape=`', 'FROM a'), 'Dockerfile').escape, '\\');
  assert.equal(parseDockerfile(lines('FROM a', '# escape=`'), 'Dockerfile').escape, '\\');
  assert.equal(parseDockerfile('\uFEFF# escape=`\nFROM a\n', 'Dockerfile').escape, '`');
});

test('a directive given twice or an invalid escape is an error', () => {
  assertDockerfileError(lines('# escape=`', '# escape=\\', 'FROM a'), 2, /escape parser directive is given a second time \(first on line 1\); keep only one\./);
  assertDockerfileError(lines('# escape=x', 'FROM a'), 1, /the escape directive must be \\ or `, not "x"/);
});

// --- continuations ---

test('continuation lines: empty lines are skipped with a warning, leading spaces are kept, trailing blanks after the escape are fine', () => {
  const df = parseDockerfile(lines('FROM a', 'RUN echo a \\  ', '', '   ', '  b \\', '\tc'), 'Dockerfile');
  const run = df.stages[0]!.instructions[0]!;
  assert.deepEqual(run.kind === 'run' && run.command, { form: 'shell', text: 'echo a   b \tc' });
  assert.equal(run.endLine, 6);
  assert.deepEqual(df.warnings, [{ line: 3, message: 'empty continuation line; Docker will refuse these in a future release, remove it' }]);
});

test('a continuation at the end of the file ends the instruction; CRLF line endings work', () => {
  assert.deepEqual(only('run', 'RUN echo a \\').command, { form: 'shell', text: 'echo a' });
  const df = parseDockerfile('FROM a\r\nRUN echo a \\\r\n  b\r\nCOPY <<EOF /x\r\nline\r\nEOF\r\n', 'Dockerfile');
  const [run, copy] = df.stages[0]!.instructions;
  assert.deepEqual(run?.kind === 'run' && run.command, { form: 'shell', text: 'echo a   b' });
  assert.deepEqual(copy?.kind === 'copy' && copy.inline.map((heredoc) => heredoc.body), ['line\r\n']);
});

test('instruction keywords are case-insensitive and may be indented', () => {
  const [run, copy] = body('  run echo hi', 'Copy a b');
  assert.equal(run?.kind, 'run');
  assert.equal(copy?.kind, 'copy');
  assert.equal(run?.original, 'run echo hi');
});

// --- heredocs ---

test('heredoc variants: several per line, file descriptors, COPY to a directory, ONBUILD', () => {
  const run = only('run', 'RUN <<A 3<<B cat /dev/fd/3', 'first', 'A', 'second', 'B');
  assert.deepEqual(run.heredocs, [
    { name: 'A', body: 'first\n', stripTabs: false, expand: true },
    { name: 'B', body: 'second\n', stripTabs: false, expand: true, fd: 3 },
  ]);
  assert.deepEqual(run.command, { form: 'shell', text: '<<A 3<<B cat /dev/fd/3' });

  const copy = only('copy', 'COPY --chmod=644 <<a <<b /dir/', 'hello', 'a', 'world', 'b');
  assert.deepEqual(copy.sources, []);
  assert.deepEqual(copy.inline.map((heredoc) => [heredoc.name, heredoc.body]), [['a', 'hello\n'], ['b', 'world\n']]);
  assert.equal(copy.dest, '/dir/');
  assert.equal(copy.endLine, 6);

  const mixed = only('add', 'ADD file.txt <<EOF /dst/', 'x', 'EOF');
  assert.deepEqual(mixed.sources, ['file.txt']);
  assert.deepEqual(mixed.inline.map((heredoc) => heredoc.name), ['EOF']);

  const empty = only('copy', 'COPY <<EOF /empty', 'EOF');
  assert.equal(empty.inline[0]!.body, '');

  const onbuild = only('onbuild', 'ONBUILD RUN <<EOF', 'make', 'EOF');
  assert.equal(onbuild.trigger.kind, 'run');
  assert.deepEqual(onbuild.trigger.kind === 'run' && onbuild.trigger.heredocs.map((heredoc) => heredoc.body), ['make\n']);
  assert.equal(onbuild.expression, 'RUN <<EOF\nmake\nEOF');
});

test('what is not a heredoc: quoted markers, markers glued to a word, other instructions', () => {
  const [quoted, glued, env, next] = body('RUN echo "<<EOF"', 'RUN cat<<EOF', 'ENV A=<<EOF', 'RUN echo next');
  assert.deepEqual(quoted?.kind === 'run' && quoted.heredocs, []);
  assert.deepEqual(glued?.kind === 'run' && glued.heredocs, []);
  assert.deepEqual(env?.kind === 'env' && env.pairs, [{ key: 'A', value: '<<EOF' }]);
  assert.equal(next?.kind, 'run');
});

test('a terminator must match exactly: trailing blanks do not end the heredoc, <<- allows leading tabs only', () => {
  const run = only('run', 'RUN <<EOF', 'EOF ', ' EOF', 'EOF');
  assert.equal(run.heredocs[0]!.body, 'EOF \n EOF\n');
  assertDockerfileError(lines('FROM a', 'RUN <<EOF', '\tEOF'), 2, /never terminated/);
});

test('runScriptOf follows BuildKit: a lone heredoc is the script, a #! heredoc a file, others go back to the shell', () => {
  const script = (...text: string[]) => runScriptOf(only('run', ...text) as RunInstruction);
  assert.deepEqual(script('RUN <<EOF', 'echo one', 'echo two', 'EOF'), { kind: 'shell', script: 'echo one\necho two\n' });
  assert.deepEqual(script('RUN <<-EOF', '\techo tab', '\tEOF'), { kind: 'shell', script: 'echo tab\n' });
  assert.deepEqual(script('RUN <<EOF', '#!/usr/bin/env python3', 'print(1)', 'EOF'), {
    kind: 'file',
    name: 'EOF',
    content: '#!/usr/bin/env python3\nprint(1)\n',
  });
  assert.deepEqual(script('RUN cat <<A > /a && cat <<B > /b', 'x', 'A', 'y', 'B'), {
    kind: 'shell',
    script: 'cat <<A > /a && cat <<B > /b\nx\nA\ny\nB',
  });
  assert.deepEqual(script('RUN ["echo", "hi"]'), { kind: 'exec', args: ['echo', 'hi'] });
  assert.deepEqual(script('RUN echo plain'), { kind: 'shell', script: 'echo plain' });
});

// --- instructions and their flags ---

test('FROM: image, platform flag, AS name lowercased', () => {
  const df = parseDockerfile(lines('FROM --platform=$BUILDPLATFORM golang:1.22@sha256:abc AS Build', 'FROM build'), 'Dockerfile');
  assert.deepEqual(
    { ...df.stages[0]!.from },
    { kind: 'from', line: 1, endLine: 1, original: 'FROM --platform=$BUILDPLATFORM golang:1.22@sha256:abc AS Build', image: 'golang:1.22@sha256:abc', platform: '$BUILDPLATFORM', stageName: 'build' },
  );
  assert.equal(df.stages[0]!.name, 'build');
  assert.equal(df.stages[1]!.name, undefined);
  assert.equal(df.stages[1]!.index, 1);
});

test('RUN: mounts, network and security are recorded; quoted flag values work', () => {
  const run = only('run', 'RUN --mount=type=cache,target=/root/.cache --mount="type=bind,source=a b,target=/c" --network=none --security=insecure make');
  assert.deepEqual(run.mounts, ['type=cache,target=/root/.cache', 'type=bind,source=a b,target=/c']);
  assert.equal(run.network, 'none');
  assert.equal(run.security, 'insecure');
  assert.deepEqual(run.command, { form: 'shell', text: 'make' });
  assert.deepEqual(only('run', 'RUN -- --not-a-flag').command, { form: 'shell', text: '--not-a-flag' });
  assert.deepEqual(only('run', 'RUN --network=host -x').command, { form: 'shell', text: '-x' });
});

test('COPY: every flag, bool forms, repeated --exclude, JSON form with spaces', () => {
  const copy = only('copy', 'COPY --from=build --chown=1000:1000 --chmod=0755 --link --parents=false --exclude=*.md --exclude=.git ./a ./b /app/');
  assert.deepEqual(
    { from: copy.from, chown: copy.chown, chmod: copy.chmod, link: copy.link, parents: copy.parents, exclude: copy.exclude },
    { from: 'build', chown: '1000:1000', chmod: '0755', link: true, parents: false, exclude: ['*.md', '.git'] },
  );
  assert.deepEqual([copy.sources, copy.dest], [['./a', './b'], '/app/']);
  const json = only('copy', 'COPY --link=TRUE ["my file.txt", "/dest dir/"]');
  assert.deepEqual([json.sources, json.dest, json.link], [['my file.txt'], '/dest dir/', true]);
});

test('ADD: checksum, keep-git-dir, link, exclude, URLs', () => {
  const add = only('add', 'ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d --keep-git-dir --link --exclude=x https://example.com/a.tar.gz /');
  assert.equal(add.checksum, 'sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d');
  assert.equal(add.keepGitDir, true);
  assert.equal(add.link, true);
  assert.deepEqual(add.exclude, ['x']);
  assert.deepEqual(add.sources, ['https://example.com/a.tar.gz']);
});

test('ENV and LABEL: name=value pairs with quotes kept raw, the legacy form, escapes', () => {
  assert.deepEqual(only('env', 'ENV A=1 B="two words" C=\'$single\' D=e\\ f E=').pairs, [
    { key: 'A', value: '1' },
    { key: 'B', value: '"two words"' },
    { key: 'C', value: "'$single'" },
    { key: 'D', value: 'e\\ f' },
    { key: 'E', value: '' },
  ]);
  assert.deepEqual(only('env', 'ENV LEGACY value with   spaces').pairs, [{ key: 'LEGACY', value: 'value with   spaces' }]);
  assert.deepEqual(only('env', 'ENV A=1 \\', '    B=2').pairs, [{ key: 'A', value: '1' }, { key: 'B', value: '2' }]);
  assert.deepEqual(only('label', 'LABEL "com.example.key"="a value" version=1.0').pairs, [
    { key: '"com.example.key"', value: '"a value"' },
    { key: 'version', value: '1.0' },
  ]);
});

test('ARG: bare names, defaults, several per line', () => {
  assert.deepEqual(only('arg', 'ARG A B=2 "C=x y" D=').args, [
    { name: 'A' },
    { name: 'B', defaultValue: '2' },
    { name: '"C', defaultValue: 'x y"' },
    { name: 'D', defaultValue: '' },
  ]);
});

test('EXPOSE, VOLUME, USER, WORKDIR, STOPSIGNAL, MAINTAINER, SHELL', () => {
  assert.deepEqual(only('expose', 'EXPOSE 80 443/tcp  53/udp').ports, ['80', '443/tcp', '53/udp']);
  assert.deepEqual(only('volume', 'VOLUME /a /b').paths, ['/a', '/b']);
  assert.deepEqual(only('volume', 'VOLUME ["/data", " /spaced "]').paths, ['/data', '/spaced']);
  assert.equal(only('user', 'USER app:app').user, 'app:app');
  assert.equal(only('workdir', 'WORKDIR /path with spaces').path, '/path with spaces');
  assert.equal(only('stopsignal', 'STOPSIGNAL SIGKILL').signal, 'SIGKILL');
  assert.equal(only('maintainer', 'MAINTAINER Jane <jane@example.com>').maintainer, 'Jane <jane@example.com>');
  assert.deepEqual(only('shell', 'SHELL ["/bin/bash", "-o", "pipefail", "-c"]').shell, ['/bin/bash', '-o', 'pipefail', '-c']);
});

test('HEALTHCHECK: CMD in both forms with every option, and NONE', () => {
  const check = only('healthcheck', 'HEALTHCHECK --interval=1m30s --timeout=500ms --start-period=1.5h --start-interval=2s --retries=3 CMD curl -f http://localhost/ || exit 1').check;
  assert.deepEqual(check, {
    type: 'cmd',
    command: { form: 'shell', text: 'curl -f http://localhost/ || exit 1' },
    interval: 90e9,
    timeout: 500e6,
    startPeriod: 5400e9,
    startInterval: 2e9,
    retries: 3,
  });
  assert.deepEqual(only('healthcheck', 'HEALTHCHECK --interval=0 cmd ["pg_isready"]').check, {
    type: 'cmd',
    command: { form: 'exec', args: ['pg_isready'] },
    interval: 0,
  });
  assert.deepEqual(only('healthcheck', 'HEALTHCHECK none').check, { type: 'none' });
});

test('ONBUILD: the trigger is parsed like any instruction', () => {
  const onbuild = only('onbuild', 'ONBUILD COPY --chown=app . /src');
  assert.equal(onbuild.trigger.kind, 'copy');
  assert.deepEqual(onbuild.trigger.kind === 'copy' && [onbuild.trigger.chown, onbuild.trigger.sources], ['app', ['.']]);
  assert.equal(onbuild.expression, 'COPY --chown=app . /src');
  assert.equal(only('onbuild', 'onbuild   run make').expression, 'run make');
});

test('global ARGs before the first FROM are kept apart; stages group the rest with line numbers', () => {
  const df = parseDockerfile(lines('ARG BASE=alpine', '# comment', 'ARG TAG', 'FROM $BASE:$TAG AS one', 'RUN a', '', 'FROM one', 'ARG TAG', 'RUN b'), 'build/Dockerfile');
  assert.deepEqual(df.globalArgs.map((arg) => [arg.line, arg.args]), [
    [1, [{ name: 'BASE', defaultValue: 'alpine' }]],
    [3, [{ name: 'TAG' }]],
  ]);
  assert.deepEqual(df.stages.map((stage) => [stage.index, stage.name, stage.from.line, stage.instructions.map((ins) => ins.line)]), [
    [0, 'one', 4, [5]],
    [1, undefined, 7, [8, 9]],
  ]);
  assert.equal(df.file, 'build/Dockerfile');
});

// --- every error, with its file:line sentence ---

const ERRORS: [string, string[], number, RegExp][] = [
  ['unknown instruction with a suggestion', ['FROM a', 'RUNN make'], 2, /unknown instruction "RUNN"; write RUN if that is what you meant\./],
  ['unknown instruction without one', ['FROM a', 'FROBNICATE x'], 2, /unknown instruction "FROBNICATE"; the instructions are FROM, RUN, COPY/],
  ['instruction before FROM', ['ARG A', 'RUN x', 'FROM a'], 2, /RUN comes before the first FROM; only ARG may appear there/],
  ['no FROM', ['ARG A'], 1, /has no FROM, so nothing to build/],
  ['FROM without image', ['FROM'], 1, /FROM takes an image and optionally "AS name", but got 0 words/],
  ['FROM with two words', ['FROM a b'], 1, /FROM takes an image and optionally "AS name", but got 2 words/],
  ['FROM with a bad stage name', ['FROM a AS 1st'], 1, /"1st" is not a valid stage name; start it with a letter/],
  ['duplicate stage name', ['FROM a AS x', 'FROM b AS X'], 2, /the stage name "x" is already used by the stage on line 1/],
  ['RUN without command', ['FROM a', 'RUN'], 2, /RUN has no arguments; write e\.g\. RUN apk add curl\./],
  ['RUN with flags only', ['FROM a', 'RUN --network=none'], 2, /RUN has no arguments/],
  ['CMD without command', ['FROM a', 'CMD'], 2, /CMD has no arguments/],
  ['ENTRYPOINT without command', ['FROM a', 'ENTRYPOINT'], 2, /ENTRYPOINT has no arguments/],
  ['COPY with one argument', ['FROM a', 'COPY a'], 2, /COPY needs at least one source and a destination; write COPY <src>\.\.\. <dest>\./],
  ['ADD with no argument', ['FROM a', 'ADD'], 2, /ADD needs at least one source and a destination/],
  ['COPY to a heredoc', ['FROM a', 'COPY a <<EOF', 'x', 'EOF'], 2, /COPY cannot write to a heredoc/],
  ['ENV without arguments', ['FROM a', 'ENV'], 2, /ENV has no arguments/],
  ['ENV legacy form without value', ['FROM a', 'ENV A'], 2, /ENV A has no value; write ENV A=<value>\./],
  ['ENV pair without =', ['FROM a', 'ENV A=1 B'], 2, /"B" has no "="; write every ENV entry as name=value\./],
  ['ENV pair without name', ['FROM a', 'ENV A=1 =2'], 2, /ENV has an entry without a name/],
  ['LABEL without arguments', ['FROM a', 'LABEL'], 2, /LABEL has no arguments/],
  ['ARG without arguments', ['FROM a', 'ARG'], 2, /ARG has no arguments/],
  ['ARG without name', ['FROM a', 'ARG =x'], 2, /ARG has an entry without a name/],
  ['EXPOSE without ports', ['FROM a', 'EXPOSE'], 2, /EXPOSE has no arguments/],
  ['VOLUME without paths', ['FROM a', 'VOLUME'], 2, /VOLUME has no arguments/],
  ['VOLUME with an empty path', ['FROM a', 'VOLUME ["/a", " "]'], 2, /VOLUME has an empty path/],
  ['USER without user', ['FROM a', 'USER'], 2, /USER has no arguments/],
  ['WORKDIR without path', ['FROM a', 'WORKDIR'], 2, /WORKDIR has no arguments/],
  ['STOPSIGNAL without signal', ['FROM a', 'STOPSIGNAL'], 2, /STOPSIGNAL has no arguments/],
  ['MAINTAINER without name', ['FROM a', 'MAINTAINER'], 2, /MAINTAINER has no arguments/],
  ['ONBUILD without trigger', ['FROM a', 'ONBUILD'], 2, /ONBUILD has no arguments/],
  ['SHELL in shell form', ['FROM a', 'SHELL /bin/bash -c'], 2, /SHELL needs the JSON form with at least one element/],
  ['SHELL with an empty array', ['FROM a', 'SHELL []'], 2, /SHELL needs the JSON form/],
  ['JSON form on WORKDIR', ['FROM a', 'WORKDIR ["/app"]'], 2, /WORKDIR does not take the JSON form; write its arguments without \[ \] and quotes, e\.g\. WORKDIR \/app\./],
  ['JSON form on EXPOSE', ['FROM a', 'EXPOSE ["80"]'], 2, /EXPOSE does not take the JSON form/],
  ['JSON form on USER', ['FROM a', 'USER ["root"]'], 2, /USER does not take the JSON form/],
  ['JSON form on FROM', ['FROM ["alpine"]'], 1, /FROM does not take the JSON form/],
  ['non-string JSON in CMD', ['FROM a', 'CMD ["a", true]'], 2, /array of strings only/],
  ['non-string JSON in COPY', ['FROM a', 'COPY ["a", 1]'], 2, /array of strings only/],
  ['ONBUILD ONBUILD', ['FROM a', 'ONBUILD ONBUILD RUN x'], 2, /ONBUILD ONBUILD is not allowed/],
  ['ONBUILD FROM', ['FROM a', 'ONBUILD FROM b'], 2, /FROM cannot be an ONBUILD trigger/],
  ['ONBUILD MAINTAINER', ['FROM a', 'ONBUILD MAINTAINER me'], 2, /MAINTAINER cannot be an ONBUILD trigger/],
  ['ONBUILD with an unknown trigger', ['FROM a', 'ONBUILD RUNN x'], 2, /unknown instruction "RUNN"/],
  ['ONBUILD with a bad trigger flag', ['FROM a', 'ONBUILD COPY --bogus a b'], 2, /unknown flag --bogus on COPY/],
  ['flags on ONBUILD itself', ['FROM a', 'ONBUILD --x RUN y'], 2, /ONBUILD takes no flags/],
  ['a variable in COPY --from', ['ARG IMG=alpine', 'FROM a', 'COPY --from=$IMG /x /x'], 3, /--from=\$IMG uses a variable, which Docker does not expand in --from; add a stage "FROM <image> AS <name>"/],
  ['duplicate flag', ['FROM a', 'COPY --from=a --from=b x y'], 2, /--from is given more than once; give it once\./],
  ['string flag without value', ['FROM a', 'COPY --chown x y'], 2, /--chown needs a value; write --chown=<value>\./],
  ['bool flag with a bad value', ['FROM a', 'COPY --link=yes x y'], 2, /--link=yes is not a boolean; write --link, --link=true or --link=false\./],
  ['bool flag with an empty value', ['FROM a', 'COPY --link= x y'], 2, /--link= has no value/],
  ['bad network', ['FROM a', 'RUN --network=bridge x'], 2, /--network=bridge is not a network mode; use default, none or host\./],
  ['bad security', ['FROM a', 'RUN --security=root x'], 2, /--security=root is not a security mode/],
  ['HEALTHCHECK without arguments', ['FROM a', 'HEALTHCHECK'], 2, /HEALTHCHECK has no arguments/],
  ['HEALTHCHECK with an unknown type', ['FROM a', 'HEALTHCHECK RUN x'], 2, /"RUN" is not a HEALTHCHECK type; write HEALTHCHECK CMD <command> or HEALTHCHECK NONE\./],
  ['HEALTHCHECK NONE with arguments', ['FROM a', 'HEALTHCHECK NONE x'], 2, /HEALTHCHECK NONE takes no arguments/],
  ['HEALTHCHECK CMD without command', ['FROM a', 'HEALTHCHECK CMD'], 2, /HEALTHCHECK CMD has no command/],
  ['HEALTHCHECK bad duration', ['FROM a', 'HEALTHCHECK --interval=5 CMD x'], 2, /--interval=5 is not a duration; write e\.g\. 30s, 1m30s or 500ms\./],
  ['HEALTHCHECK duration under 1ms', ['FROM a', 'HEALTHCHECK --timeout=10us CMD x'], 2, /--timeout=10us is shorter than 1ms/],
  ['HEALTHCHECK negative retries', ['FROM a', 'HEALTHCHECK --retries=-1 CMD x'], 2, /--retries=-1 is negative/],
  ['HEALTHCHECK retries not a number', ['FROM a', 'HEALTHCHECK --retries=three CMD x'], 2, /--retries=three is not a whole number/],
  ['HEALTHCHECK flag elsewhere', ['FROM a', 'RUN --interval=1s x'], 2, /--interval is a flag of HEALTHCHECK, not of RUN/],
  ['unterminated heredoc in ONBUILD', ['FROM a', 'ONBUILD RUN <<EOF', 'x'], 2, /never terminated/],
  ['malformed heredoc delimiter', ['FROM a', 'COPY <<"EOF /x', 'EOF'], 2, /a heredoc delimiter has an unclosed quote/],
];

test('every parse error names the file and line and says what to do', () => {
  for (const [, text, line, pattern] of ERRORS) assertDockerfileError(lines(...text), line, pattern);
});

test('an empty Dockerfile, or one with only comments, is an error at line 1', () => {
  assertDockerfileError('', 1, /the Dockerfile has no instructions; start it with FROM <image>\./);
  assertDockerfileError(lines('# just a comment', '', '   '), 1, /no instructions/);
});

test('errors in a file elsewhere carry that file name', () => {
  assertDockerfileError(lines('FROM a', '', 'RUNN'), 3, /unknown instruction/, 'sub/dir/app.Dockerfile');
});
