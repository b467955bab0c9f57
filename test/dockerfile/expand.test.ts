import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expandString, expandWords, expandInstruction, EXPANDED_KINDS } from '../../src/dockerfile/expand.js';
import { lexWord, reversePattern, shellPatternToRegExp } from '../../src/dockerfile/lex.js';
import { parseDockerfile } from '../../src/dockerfile/parse.js';
import { isKilnError } from '../../src/util/errors.js';

const ENV = new Map([
  ['PWD', '/home'],
  ['SHELL', 'bash'],
  ['KOREAN', '한국어'],
  ['NULL', ''],
]);

// Cases from BuildKit's shell/envVarTest, which `docker build` agrees with.
const SINGLE_WORD: [string, string | Error][] = [
  ['hello', 'hello'],
  ["he'll'o", 'hello'],
  ["he'llo", new Error()],
  ["he\\'llo", "he'llo"],
  ["he\\\\'llo", new Error()],
  ['abc\\tdef', 'abctdef'],
  ['"abc\\tdef"', 'abc\\tdef'],
  ['"abc\\\\tdef"', 'abc\\tdef'],
  ["'abc\\tdef'", 'abc\\tdef'],
  ['hello\\', 'hello'],
  ['hello\\\\', 'hello\\'],
  ['"hello', new Error()],
  ['"hello\\"', new Error()],
  ['"hel\'lo"', "hel'lo"],
  ["'hello", new Error()],
  ["'hello\\'", 'hello\\'],
  ["'hello\\there'", 'hello\\there'],
  ['"\'\'"', "''"],
  ['$.', '$.'],
  ['he$1x', 'hex'],
  ['he$.x', 'he$.x'],
  ['he$pwd.', 'he.'],
  ['he$PWD', 'he/home'],
  ['he\\$PWD', 'he$PWD'],
  ['he\\\\$PWD', 'he\\/home'],
  ['"he\\$PWD"', 'he$PWD'],
  ['"he\\\\$PWD"', 'he\\/home'],
  ['\\${}', '${}'],
  ['\\${}aaa', '${}aaa'],
  ['he\\${}xx', 'he${}xx'],
  ['${}', new Error()],
  ['he${}xx', new Error()],
  ['he${hi}xx', 'hexx'],
  ['he${PWD}', 'he/home'],
  ['he${.}', new Error()],
  ['he${XXX:-000}xx', 'he000xx'],
  ['he${PWD:-000}xx', 'he/homexx'],
  ['he${XXX:-$PWD}xx', 'he/homexx'],
  ['he${XXX:-${PWD:-yyy}}xx', 'he/homexx'],
  ['he${XXX:-${YYY:-yyy}}xx', 'heyyyxx'],
  ['he${XXX:YYY}', new Error()],
  ['he${XXX?}', new Error()],
  ['he${XXX:?}', new Error()],
  ['he${PWD?}', 'he/home'],
  ['he${PWD:?}', 'he/home'],
  ['he${NULL?}', 'he'],
  ['he${NULL:?}', new Error()],
  ['he${XXX:+${PWD}}xx', 'hexx'],
  ['he${PWD:+${XXX}}xx', 'hexx'],
  ['he${PWD:+${SHELL}}xx', 'hebashxx'],
  ['he${XXX:+000}xx', 'hexx'],
  ['he${PWD:+000}xx', 'he000xx'],
  ["'he${XX}'", 'he${XX}'],
  ['"he${PWD}"', 'he/home'],
  ['"he\'$PWD\'"', "he'/home'"],
  ["'$PWD'", '$PWD'],
  ["'\\$PWD'", '\\$PWD'],
  ['\'"hello"\'', '"hello"'],
  ['he${PWD', new Error()],
  ['he${PWD=000}xx', new Error()],
  ['he${PWD+${PWD}}xx', 'he/homexx'],
  ['he${PWD+${XXX}}xx', 'hexx'],
  ['he${XXX-$PWD:-000}xx', 'he/home:-000xx'],
  ['he${XXX-}xx', 'hexx'],
  ['he${NULL-x}xx', 'hexx'],
  ['he${NULL:-x}xx', 'hexxx'],
  ['${KOREAN}', '한국어'],
  ["안'녕'하세요", '안녕하세요'],
];

test('single-word expansion matches BuildKit on its own test vectors', () => {
  for (const [input, expected] of SINGLE_WORD) {
    if (expected instanceof Error) {
      assert.throws(() => expandString(input, ENV), (err: unknown) => isKilnError(err, 'DOCKERFILE'), input);
    } else {
      assert.equal(expandString(input, ENV), expected, input);
    }
  }
});

const MODIFIERS: [string, Record<string, string>, string | Error][] = [
  ['${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}', { FOO: 'xxx', BAR: '' }, 'xxx  ccc'],
  ['${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}', { FOO: 'xxx', BAR: '' }, 'xxx bbb ccc'],
  ['${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}', { FOO: 'xxx', BAR: '' }, 'aaa bbb '],
  ['${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}', { FOO: 'xxx', BAR: '' }, 'aaa  '],
  ['${FOO?aaa}', { FOO: 'xxx' }, 'xxx'],
  ['${BAR?bbb}', { BAR: '' }, ''],
  ['${BAZ?ccc}', {}, new Error()],
  ['${BAR:?bbb}', { BAR: '' }, new Error()],
  ['${FOO=aaa}', { FOO: 'xxx' }, new Error()],
  ['${FOO#()[]{\\}^$.\\*\\?|\\\\}', { FOO: '()[]{}^$.*?|\\x' }, 'x'],
  ['${FOO%%\\**}', { FOO: 'xx**' }, 'xx'],
  ['${FOO#*x*y}', { FOO: 'xxyy' }, 'y'],
  ['${FOO#*}', { FOO: 'xxyy' }, 'xxyy'],
  ['${FOO#$BAR}', { FOO: 'xxyy', BAR: 'x' }, 'xyy'],
  ['${FOO#}', { FOO: 'xxyy' }, 'xxyy'],
  ['${FOO##*x}', { FOO: 'xxyy' }, 'yy'],
  ['${FOO#?\\?}', { FOO: '???y' }, '?y'],
  ['${ABC:-.}${FOO%x}${ABC:-.}', { FOO: 'xxyy' }, '.xxyy.'],
  ['${FOO%%\\**\\*}', { FOO: 'a***yy*' }, 'a'],
  ['${FOO%.*}', { FOO: 'archive.tar.gz' }, 'archive.tar'],
  ['${FOO%%.*}', { FOO: 'archive.tar.gz' }, 'archive'],
  ['${FOO#*/}', { FOO: 'a/b/c' }, 'b/c'],
  ['${FOO##*/}', { FOO: 'a/b/c' }, 'c'],
  ['${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}', { FOO: '/foo*/*/*.txt', NEEDLE: '\\*/' }, '/foo.*/*.txt - /foo..*.txt'],
  ['${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}', { FOO: '/tmp/tmp/bar.txt', NEEDLE: '/tmp' }, '/tmp/bar.txt - /bar.txt'],
  ['${FOO/$NEEDLE/$R} - ${FOO//$NEEDLE/$R}', { FOO: '/a/foo/b/c.txt', NEEDLE: '/?/', R: '/' }, '/foo/b/c.txt - /foo/c.txt'],
  ['${FOO/$NEEDLE/$R}', { FOO: 'http://google.de', NEEDLE: 'http://', R: 'https://' }, 'https://google.de'],
  ['${FOO//\\//\\/}', { FOO: '/tmp/foo.txt' }, '\\/tmp\\/foo.txt'],
  ['${FOO/$BAR/ww}', { FOO: 'xxyy', BAR: '' }, 'wwxxyy'],
  ['${FOO//ww}', { FOO: 'xxyy' }, new Error()],
  ['${FOO///}', { FOO: 'xxyy' }, 'xxyy'],
  ['${FOO///}', {}, ''],
  ['something-${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}', { TARGETOS: 'linux', TARGETARCH: 'arm', TARGETVARIANT: 'v7' }, 'something-linux-arm-v7'],
  ['something-${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}', { TARGETOS: 'linux', TARGETARCH: 'amd64', TARGETVARIANT: '' }, 'something-linux-amd64'],
];

test('every modifier BuildKit supports: - + ? # ## % %% / //', () => {
  for (const [input, vars, expected] of MODIFIERS) {
    const env = new Map(Object.entries(vars));
    if (expected instanceof Error) assert.throws(() => expandString(input, env), (err: unknown) => isKilnError(err, 'DOCKERFILE'), input);
    else assert.equal(expandString(input, env), expected, input);
  }
});

test('${V:?message} fails with the file, the line and the message', () => {
  const at = { file: 'build/Dockerfile', line: 7 };
  assert.throws(
    () => expandString('${VERSION:?set VERSION with --build-arg}', new Map(), { at }),
    (err: unknown) =>
      isKilnError(err, 'DOCKERFILE') &&
      err.message.startsWith('build/Dockerfile:7: VERSION: set VERSION with --build-arg') &&
      err.message.includes('--build-arg') &&
      err.message.endsWith('.'),
  );
  assert.throws(() => expandString('${VERSION:?}', new Map([['VERSION', '']]), { at }), /build\/Dockerfile:7: VERSION: is not allowed to be empty/);
  assert.throws(() => expandString('${X', new Map(), { at }), /build\/Dockerfile:7: cannot expand "\$\{X": syntax error: missing '\}'/);
});

test('the escape character can be a backtick', () => {
  const env = new Map([['A', 'a']]);
  assert.equal(expandString('`$A $A', env, { escape: '`' }), '$A a');
  assert.equal(expandString('"x`"y"', env, { escape: '`' }), 'x"y');
  assert.equal(expandString('C:\\path\\$A', env, { escape: '`' }), 'C:\\path\\a');
  assert.equal(expandString('C:\\path\\$A', env), 'C:path$A');
});

const WORDS: [string, Record<string, string>, string[]][] = [
  ['80 443', {}, ['80', '443']],
  ['$PORTS', { PORTS: '80/tcp 443/udp' }, ['80/tcp', '443/udp']],
  ['"$PORTS"', { PORTS: '80 443' }, ['80 443']],
  ["'a b' c", {}, ['a b', 'c']],
  ['a\\ b c', {}, ['a b', 'c']],
  ['""', {}, []],
  ['x"" y', {}, ['x', 'y']],
  ['${EMPTY} z', {}, ['z']],
  ['  lead   trail  ', {}, ['lead', 'trail']],
];

test('expandWords splits after expansion, keeping quoted text together', () => {
  for (const [input, vars, expected] of WORDS) {
    assert.deepEqual(expandWords(input, new Map(Object.entries(vars))), expected, input);
  }
});

test('the lexer reports which variables it looked up', () => {
  const result = lexWord('${A:-$B} $C', new Map([['B', 'b'], ['C', 'c']]), { escape: '\\' });
  assert.equal(result.text, 'b c');
  assert.deepEqual([...result.matched].sort(), ['B', 'C']);
  assert.deepEqual([...result.unmatched], ['A']);
});

test('shell patterns become anchored regular expressions; reversal keeps escapes in place', () => {
  assert.equal(shellPatternToRegExp('*', true, true).source, '^[^\\n]*');
  assert.equal(shellPatternToRegExp('\\*', true, true).source, '^\\*');
  assert.throws(() => shellPatternToRegExp('\\x', true, true), /invalid escape/);
  assert.equal(reversePattern('a\\*c'), 'c\\*a');
  assert.equal(reversePattern('\\\\\\ab'), 'b\\a\\\\');
  assert.equal(reversePattern('👽\\🚀🖖'), '🖖\\🚀👽');
});

test('which instructions Docker expands: not RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK, ONBUILD', () => {
  for (const kind of ['add', 'copy', 'env', 'expose', 'from', 'label', 'stopsignal', 'user', 'volume', 'workdir', 'arg'] as const) {
    assert.ok(EXPANDED_KINDS.has(kind), kind);
  }
  for (const kind of ['run', 'cmd', 'entrypoint', 'shell', 'healthcheck', 'onbuild', 'maintainer'] as const) {
    assert.ok(!EXPANDED_KINDS.has(kind), kind);
  }
  const df = parseDockerfile(
    [
      'FROM a',
      'RUN echo $X',
      'CMD echo $X',
      'ENV Y=$X',
      'COPY $X/src "$X"dir /dst/$X',
      'EXPOSE $PORTS',
      'VOLUME ["/data/$X"]',
      'USER $X:$X',
      'WORKDIR /w/${X}',
      'LABEL "k$X"="v $X"',
      'STOPSIGNAL SIG$X',
      'ONBUILD RUN echo $X',
    ].join('\n'),
    'Dockerfile',
  );
  const vars = new Map([['X', 'x'], ['PORTS', '80 81']]);
  const expanded = df.stages[0]!.instructions.map((instruction) => expandInstruction(instruction, vars, '\\', 'Dockerfile'));
  const [run, cmd, env, copy, expose, volume, user, workdir, label, stopsignal, onbuild] = expanded;
  assert.deepEqual(run!.kind === 'run' && run.command, { form: 'shell', text: 'echo $X' });
  assert.deepEqual(cmd!.kind === 'cmd' && cmd.command, { form: 'shell', text: 'echo $X' });
  assert.deepEqual(env!.kind === 'env' && env.pairs, [{ key: 'Y', value: 'x' }]);
  assert.ok(copy!.kind === 'copy');
  assert.deepEqual(copy.sources, ['x/src', 'xdir']);
  assert.equal(copy.dest, '/dst/x');
  assert.deepEqual(expose!.kind === 'expose' && expose.ports, ['80', '81']);
  assert.deepEqual(volume!.kind === 'volume' && volume.paths, ['/data/x']);
  assert.equal(user!.kind === 'user' && user.user, 'x:x');
  assert.equal(workdir!.kind === 'workdir' && workdir.path, '/w/x');
  assert.deepEqual(label!.kind === 'label' && label.pairs, [{ key: 'kx', value: 'v x' }]);
  assert.equal(stopsignal!.kind === 'stopsignal' && stopsignal.signal, 'SIGx');
  assert.equal(onbuild!.kind === 'onbuild' && onbuild.expression, 'RUN echo $X');
});

test('shell-form COPY splits on whitespace before expanding, so a quoted path with a space is an error there too', () => {
  const df = parseDockerfile('FROM a\nCOPY "$X dir" /dst/\n', 'Dockerfile');
  assert.throws(
    () => expandInstruction(df.stages[0]!.instructions[0]!, new Map([['X', 'x']]), '\\', 'Dockerfile'),
    /^KilnError: Dockerfile:2: cannot expand ""\$X": unexpected end of statement while looking for matching double-quote; .*\.$/,
  );
  const json = parseDockerfile('FROM a\nCOPY ["$X dir", "/dst/"]\n', 'Dockerfile');
  const copy = expandInstruction(json.stages[0]!.instructions[0]!, new Map([['X', 'x']]), '\\', 'Dockerfile');
  assert.deepEqual(copy.kind === 'copy' && copy.sources, ['x dir']);
});

test('COPY heredoc bodies expand only with an unquoted delimiter, keeping quotes', () => {
  const df = parseDockerfile(
    ['FROM a', 'COPY <<A <<"B" /dst/', 'say "$X" \'$X\' \\$X', 'A', 'say "$X"', 'B'].join('\n'),
    'Dockerfile',
  );
  const copy = expandInstruction(df.stages[0]!.instructions[0]!, new Map([['X', 'x']]), '\\', 'Dockerfile');
  assert.ok(copy.kind === 'copy');
  assert.equal(copy.inline[0]!.body, 'say "x" \'x\' $X\n');
  assert.equal(copy.inline[1]!.body, 'say "$X"\n');
});
