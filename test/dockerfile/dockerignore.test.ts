import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanPath, createIgnoreMatcher } from '../../src/dockerfile/dockerignore.js';
import { isKilnError } from '../../src/util/errors.js';

// Single-pattern cases from moby/patternmatcher's tests.
const SINGLE: [string, string, boolean][] = [
  ['**', 'file', true],
  ['**', 'file/', true],
  ['**/', 'file', true],
  ['**', 'dir/file', true],
  ['**/', 'dir/file/', true],
  ['**/**', 'dir/file', true],
  ['dir/**', 'dir/file', true],
  ['dir/**', 'dir/dir2/file/', true],
  ['**/dir', 'dir', true],
  ['**/dir', 'dir/file', true],
  ['**/dir2/*', 'dir/dir2/file', true],
  ['**/dir2/**', 'dir/dir2/dir3/file', true],
  ['**file', 'file', true],
  ['**file', 'dir/file', true],
  ['**/file', 'dir/file', true],
  ['**file', 'dir/dir/file', true],
  ['**/file', 'dir/dir/file', true],
  ['**/file*', 'dir/dir/file', true],
  ['**/file*', 'dir/dir/file.txt', true],
  ['**/file*txt', 'dir/dir/file.txt', true],
  ['**/file*.txt', 'dir/dir/file.txt', true],
  ['**/file*.txt*', 'dir/dir/file.txt', true],
  ['**/**/*.txt', 'dir/dir/file.txt', true],
  ['**/**/*.txt2', 'dir/dir/file.txt', false],
  ['**/*.txt', 'file.txt', true],
  ['**/**/*.txt', 'file.txt', true],
  ['a**/*.txt', 'a/file.txt', true],
  ['a**/*.txt', 'a/dir/file.txt', true],
  ['a**/*.txt', 'a/dir/dir/file.txt', true],
  ['a/*.txt', 'a/dir/file.txt', false],
  ['a/*.txt', 'a/file.txt', true],
  ['a/*.txt**', 'a/file.txt', true],
  ['a[b-d]e', 'ae', false],
  ['a[b-d]e', 'ace', true],
  ['a[b-d]e', 'aae', false],
  ['a[^b-d]e', 'aze', true],
  ['.*', '.foo', true],
  ['.*', 'foo', false],
  ['abc.def', 'abcdef', false],
  ['abc.def', 'abc.def', true],
  ['abc.def', 'abcZdef', false],
  ['abc?def', 'abcZdef', true],
  ['abc?def', 'abcdef', false],
  ['a\\\\', 'a\\', true],
  ['**/foo/bar', 'foo/bar', true],
  ['**/foo/bar', 'dir/foo/bar', true],
  ['**/foo/bar', 'dir/dir2/foo/bar', true],
  ['abc/**', 'abc', false],
  ['abc/**', 'abc/def', true],
  ['abc/**', 'abc/def/ghi', true],
  ['**/.foo', '.foo', true],
  ['**/.foo', 'bar.foo', false],
  ['a(b)c/def', 'a(b)c/def', true],
  ['a(b)c/def', 'a(b)c/xyz', false],
  ['a.|)$(}+{bc', 'a.|)$(}+{bc', true],
  ['dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl', 'dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl', true],
  ['dist/*.whl', 'dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl', true],
  ['*.md', 'docs/readme.md', false],
  ['docs', 'docs/deep/file', true],
  ['a]b', 'a]b', true],
  ['x\\*y', 'x*y', true],
  ['x\\*y', 'xay', false],
];

test('single patterns match as moby/patternmatcher matches them', () => {
  for (const [pattern, path, expected] of SINGLE) {
    assert.equal(createIgnoreMatcher(pattern).ignores(path, false), expected, `${pattern} ~ ${path}`);
  }
});

const IGNORE_FILE = [
  '# comment',
  '*.md',
  '!README.md',
  'node_modules',
  '/build/',
  './out/../dist//',
  'temp?',
  '**/*.log',
  '!important.log',
  'docs/**',
  '!docs/keep/**',
  '  # a pattern, not a comment',
  '',
  '   ',
].join('\n');

test('a whole .dockerignore: comments, cleaning, exceptions, parent directories, last match wins', () => {
  const matcher = createIgnoreMatcher(IGNORE_FILE);
  const cases: [string, boolean][] = [
    ['a.md', true],
    ['README.md', false],
    ['sub/x.md', false],
    ['node_modules', true],
    ['node_modules/x/y.js', true],
    ['build', true],
    ['build/out.bin', true],
    ['dist/app.js', true],
    ['out/x', false],
    ['temp1', true],
    ['temp12', false],
    ['a/b/c.log', true],
    ['important.log', false],
    ['a/important.log', true],
    ['docs/x', true],
    ['docs/keep', true],
    ['docs/keep/a', false],
    ['docs/keep/a/b', false],
    ['# a pattern, not a comment', true],
    ['# comment', false],
    ['src/main.ts', false],
    ['.', false],
    ['./node_modules/x', true],
    ['/node_modules/x', true],
  ];
  for (const [path, expected] of cases) assert.equal(matcher.ignores(path, false), expected, path);
});

test('mayContainIncluded tells a walker which ignored directories still hold exceptions', () => {
  const matcher = createIgnoreMatcher(IGNORE_FILE);
  assert.equal(matcher.mayContainIncluded('docs'), true);
  assert.equal(matcher.mayContainIncluded('docs/keep'), true);
  assert.equal(matcher.mayContainIncluded('docs/other'), false);
  assert.equal(matcher.mayContainIncluded('node_modules'), false);
  assert.equal(matcher.mayContainIncluded('.'), true);

  const exact = createIgnoreMatcher('vendor\n!vendor/github.com/keep\n');
  assert.equal(exact.ignores('vendor/github.com/other/x.go', false), true);
  assert.equal(exact.ignores('vendor/github.com/keep/x.go', false), false);
  assert.equal(exact.ignores('vendor/github.com', true), true);
  assert.equal(exact.mayContainIncluded('vendor'), true);
  assert.equal(exact.mayContainIncluded('vendor/github.com'), true);
  assert.equal(exact.mayContainIncluded('vendor/gitlab.com'), false);

  const wildcard = createIgnoreMatcher('*\n!*/src/*.go\n!**/KEEP\n');
  assert.equal(wildcard.ignores('pkg/src/a.go', false), false);
  assert.equal(wildcard.ignores('pkg/src/a.c', false), true);
  assert.equal(wildcard.ignores('deep/er/KEEP', false), false);
  assert.equal(wildcard.mayContainIncluded('pkg'), true);
  assert.equal(wildcard.mayContainIncluded('anything/at/all'), true);

  const noExceptions = createIgnoreMatcher('*.tmp\ncache\n');
  assert.equal(noExceptions.mayContainIncluded('cache'), false);
});

test('the last matching pattern wins', () => {
  assert.equal(createIgnoreMatcher('a\n!a\na\n').ignores('a', false), true);
  assert.equal(createIgnoreMatcher('a\n!a\n').ignores('a', false), false);
  assert.equal(createIgnoreMatcher('!a\na\n').ignores('a', false), true);
  assert.equal(createIgnoreMatcher('*\n!keep\n').ignores('keep', false), false);
  assert.equal(createIgnoreMatcher('*\n!keep\n').ignores('keep/inner', false), false);
  assert.equal(createIgnoreMatcher('*\n!keep\n').ignores('other', true), true);
});

test('an empty ignore file ignores nothing; a BOM and CRLF are fine', () => {
  assert.equal(createIgnoreMatcher('').ignores('anything', false), false);
  const matcher = createIgnoreMatcher('\uFEFF*.o\r\n!keep.o\r\n');
  assert.equal(matcher.ignores('a.o', false), true);
  assert.equal(matcher.ignores('keep.o', false), false);
});

test('bad patterns are errors with the file and line', () => {
  const cases: [string, number, RegExp][] = [
    ['ok\n!\n', 2, /"!" alone is not a pattern; write !<path> to bring a path back\./],
    ['a[\n', 1, /"a\[" is not a valid pattern; close every \[ \] class/],
    ['\n\n[]a]\n', 3, /is not a valid pattern/],
    ['x\\\n', 1, /is not a valid pattern/],
    ['[a-]\n', 1, /is not a valid pattern/],
  ];
  for (const [text, line, pattern] of cases) {
    assert.throws(
      () => createIgnoreMatcher(text, 'app/Dockerfile.dockerignore'),
      (err: unknown) => isKilnError(err, 'DOCKERFILE') && err.message.startsWith(`app/Dockerfile.dockerignore:${line}: `) && pattern.test(err.message),
      text,
    );
  }
});

test('cleanPath is Go path.Clean', () => {
  const cases: [string, string][] = [
    ['', '.'],
    ['.', '.'],
    ['/', '/'],
    ['a/b/', 'a/b'],
    ['a//b', 'a/b'],
    ['./a/./b', 'a/b'],
    ['a/../b', 'b'],
    ['../a', '../a'],
    ['a/../../b', '../b'],
    ['/../a', '/a'],
    ['/a/b/..', '/a'],
  ];
  for (const [input, expected] of cases) assert.equal(cleanPath(input), expected, input);
});
