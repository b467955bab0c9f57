import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyMetadata, exposedPorts } from '../../src/builder/commands/metadata.js';
import type { StageInstruction } from '../../src/dockerfile/index.js';
import { isKilnError } from '../../src/util/errors.js';

function expose(...ports: string[]): StageInstruction {
  return { kind: 'expose', ports, line: 7, endLine: 7, original: `EXPOSE ${ports.join(' ')}` } as StageInstruction;
}

test('a single port defaults to tcp and keeps an explicit protocol in lower case', () => {
  assert.deepEqual(exposedPorts('80', 'Dockerfile:3'), ['80/tcp']);
  assert.deepEqual(exposedPorts('53/udp', 'Dockerfile:3'), ['53/udp']);
  assert.deepEqual(exposedPorts('8080/TCP', 'Dockerfile:3'), ['8080/tcp']);
  assert.deepEqual(exposedPorts('9/sctp', 'Dockerfile:3'), ['9/sctp']);
  assert.deepEqual(exposedPorts('0080', 'Dockerfile:3'), ['80/tcp']);
});

test('a range expands into each port in it, with its protocol', () => {
  assert.deepEqual(exposedPorts('8000-8002/tcp', 'Dockerfile:3'), ['8000/tcp', '8001/tcp', '8002/tcp']);
  assert.deepEqual(exposedPorts('5000-5001', 'Dockerfile:3'), ['5000/tcp', '5001/tcp']);
  assert.deepEqual(exposedPorts('7-7/udp', 'Dockerfile:3'), ['7/udp']);
  assert.equal(exposedPorts('1-65535', 'Dockerfile:3').length, 65535);
});

test('EXPOSE adds every expanded port to the inherited ExposedPorts', () => {
  const outcome = applyMetadata(expose('8000-8002/tcp', '53/udp'), { ExposedPorts: { '22/tcp': {} } }, 'Dockerfile:7', false);
  assert.deepEqual(Object.keys(outcome!.config.ExposedPorts ?? {}).sort(), ['22/tcp', '53/udp', '8000/tcp', '8001/tcp', '8002/tcp']);
  assert.deepEqual(outcome!.effect, { kind: 'metadata' });
});

for (const [spec, why] of [
  ['http', /EXPOSE http is not a port;/],
  ['80/tpc', /EXPOSE 80\/tpc has the unknown protocol tpc;/],
  ['0', /EXPOSE 0 is outside the port numbers;/],
  ['65536', /EXPOSE 65536 is outside the port numbers;/],
  ['8000-70000', /outside the port numbers;/],
  ['8002-8000/tcp', /EXPOSE 8002-8000\/tcp is a range that ends before it starts;/],
  ['8000-', /is not a port;/],
  ['-80', /is not a port;/],
  ['80/tcp/udp', /is not a port;/],
  ['8080:80', /EXPOSE 8080:80 maps a host port, which EXPOSE cannot do;/],
] as const) {
  test(`EXPOSE ${spec} is refused in one sentence with file and line`, () => {
    assert.throws(
      () => applyMetadata(expose('80', spec), {}, 'app/Dockerfile:12', false),
      (err: unknown) => {
        assert.ok(isKilnError(err, 'DOCKERFILE'));
        assert.match(err.message, /^app\/Dockerfile:12: /);
        assert.match(err.message, why);
        assert.match(err.message, /e\.g\. 80, 53\/udp or 8000-8002\/tcp\.$/);
        assert.equal(err.message.split('\n').length, 1);
        return true;
      },
    );
  });
}
