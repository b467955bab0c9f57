import { test } from 'node:test';
import assert from 'node:assert/strict';
import { extractFlags, parseJsonArgs, splitCommand, splitQuotedWords } from '../../src/dockerfile/words.js';
import { parseGoDuration } from '../../src/util/duration.js';
import { heredocMarkersOf, parseHeredocMarker } from '../../src/dockerfile/heredoc.js';

test('splitQuotedWords keeps quotes and escapes in the words (BuildKit parseWords)', () => {
  const cases: [string, string[]][] = [
    ['foo', ['foo']],
    ['foo bar', ['foo', 'bar']],
    ['foo\\ bar', ['foo\\ bar']],
    ['foo=bar', ['foo=bar']],
    ["foo bar 'abc xyz'", ['foo', 'bar', "'abc xyz'"]],
    ['foo bar "abc xyz"', ['foo', 'bar', '"abc xyz"']],
    ['àöû', ['àöû']],
    ['föo bàr "âbc xÿz"', ['föo', 'bàr', '"âbc xÿz"']],
    ['a="x \\" y" b', ['a="x \\" y"', 'b']],
    ["a='x \\' b", ["a='x \\'", 'b']],
    ['a=""', ['a=""']],
    ['  spaced   out  ', ['spaced', 'out']],
    ['end\\', ['end']],
  ];
  for (const [input, expected] of cases) assert.deepEqual(splitQuotedWords(input, '\\'), expected, input);
  assert.deepEqual(splitQuotedWords('a=x` y b', '`'), ['a=x` y', 'b']);
});

test('extractFlags takes leading --flags, resolving quotes and backslashes, and stops at the first other word', () => {
  const cases: [string, string[], string][] = [
    ['--foo=bar', ['--foo=bar'], ''],
    ['--foo=bar cmd arg', ['--foo=bar'], 'cmd arg'],
    ['--foo="a b" cmd', ['--foo=a b'], 'cmd'],
    ["--foo='a\\'b' cmd", ["--foo=a'b"], 'cmd'],
    ['--bool --foo=x rest --not-a-flag', ['--bool', '--foo=x'], 'rest --not-a-flag'],
    ['-- --x', [], ' --x'],
    ['-x', [], '-x'],
    ['--a\\ b=c d', ['--a b=c'], 'd'],
    ['', [], ''],
  ];
  for (const [input, flags, rest] of cases) assert.deepEqual(extractFlags(input), { flags, rest }, input);
  assert.deepEqual(splitCommand('  COPY\t--from=a  b c  '), { keyword: 'COPY', flags: ['--from=a'], rest: 'b c' });
  assert.deepEqual(splitCommand('RUN'), { keyword: 'RUN', flags: [], rest: '' });
});

test('parseJsonArgs tells exec form, shell form and a mistaken array apart', () => {
  assert.deepEqual(parseJsonArgs(' ["a", "b c"]'), { kind: 'strings', values: ['a', 'b c'] });
  assert.deepEqual(parseJsonArgs('[]'), { kind: 'strings', values: [] });
  assert.deepEqual(parseJsonArgs('["a", 1]'), { kind: 'not-strings' });
  assert.deepEqual(parseJsonArgs('["a", null]'), { kind: 'not-strings' });
  assert.deepEqual(parseJsonArgs('[a]'), { kind: 'not-json' });
  assert.deepEqual(parseJsonArgs('["a"] trailing'), { kind: 'not-json' });
  assert.deepEqual(parseJsonArgs('echo ["a"]'), { kind: 'not-json' });
});

test('heredoc markers: names, <<-, quoting, file descriptors, and words that are not markers', () => {
  assert.deepEqual(parseHeredocMarker('<<EOF'), { name: 'EOF', stripTabs: false, expand: true });
  assert.deepEqual(parseHeredocMarker('<<-EOF'), { name: 'EOF', stripTabs: true, expand: true });
  assert.deepEqual(parseHeredocMarker("<<'EOF'"), { name: 'EOF', stripTabs: false, expand: false });
  assert.deepEqual(parseHeredocMarker('<<-"E O F"'), { name: 'E O F', stripTabs: true, expand: false });
  assert.deepEqual(parseHeredocMarker('10<<EOF'), { name: 'EOF', stripTabs: false, expand: true, fd: 10 });
  for (const word of ['<<', '<<<EOF', 'cat<<EOF', '"<<EOF"', '<EOF', 'x']) assert.equal(parseHeredocMarker(word), undefined, word);
  assert.deepEqual(heredocMarkersOf('RUN <<A cat - <<-"B" > /x').map((marker) => marker.name), ['A', 'B']);
  assert.deepEqual(heredocMarkersOf('RUN echo "<<A" \'<<B\''), []);
  assert.deepEqual(heredocMarkersOf('RUN echo "unterminated <<A'), []);
});

test('Go durations for HEALTHCHECK', () => {
  const cases: [string, number | undefined][] = [
    ['0', 0],
    ['300ms', 300e6],
    ['1.5h', 5400e9],
    ['2h45m', 9900e9],
    ['1m30s', 90e9],
    ['1µs', 1e3],
    ['1μs', 1e3],
    ['10us', 10e3],
    ['7ns', 7],
    ['.5s', 5e8],
    ['1.s', 1e9],
    ['+5s', 5e9],
    ['-5s', -5e9],
    ['', undefined],
    ['5', undefined],
    ['1x', undefined],
    ['s', undefined],
    ['.s', undefined],
    ['1m 30s', undefined],
  ];
  for (const [input, expected] of cases) assert.equal(parseGoDuration(input), expected, input);
});
