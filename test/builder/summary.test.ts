import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { formatSummary, logSummary, summarizeBuild, type SummaryInput } from '../../src/builder/summary.js';
import type { PushResult } from '../../src/registry/push.js';
import { parseReference } from '../../src/registry/reference.js';
import { createLogger } from '../../src/util/log.js';

const DIGEST = `sha256:${'ab'.repeat(32)}`;

function pushed(blobs: PushResult['blobs'], uploadedBytes: number): PushResult {
  return { reference: parseReference('127.0.0.1:5000/app:1'), digest: DIGEST, uploadedBytes, blobs };
}

const INPUT: SummaryInput = {
  dockerfileName: 'Dockerfile',
  stages: [
    {
      index: 0,
      name: 'build',
      steps: [
        { text: 'RUN make', line: 2, seconds: 12.345, layerBytes: 3 * 1024 * 1024 },
        { text: 'ENV A=b', line: 3, seconds: 0 },
      ],
    },
    {
      index: 1,
      steps: [
        { text: 'COPY --from=build /out /app', line: 6, seconds: 0.5, layerBytes: 2048, cache: 'hit' },
        { text: 'RUN echo a very long command line that goes on and on past what a summary line shows', line: 7, seconds: 1.2, layerBytes: 512, cache: 'miss' },
      ],
    },
  ],
  pushed: [
    pushed([
      { digest: 'sha256:1', result: { kind: 'uploaded', bytes: 3 * 1024 * 1024 } },
      { digest: 'sha256:2', result: { kind: 'mounted', from: 'app/cache' } },
      { digest: 'sha256:3', result: { kind: 'exists' } },
      { digest: 'sha256:4', result: { kind: 'uploaded', bytes: 1024 } },
    ], 3 * 1024 * 1024 + 1024),
  ],
  pulledBytes: 45 * 1024 * 1024,
  phases: { plan: 0.4, pull: 2.345, run: 13.5, snapshot: 0.25, push: 1 },
  seconds: 17.9,
  digest: DIGEST,
  cacheUsed: true,
};

test('the text summary: one aligned line per step, the totals, the digest last', () => {
  assert.deepEqual(formatSummary(summarizeBuild(INPUT)), [
    'build summary: 4 steps in 17.90 s',
    '  stage 0 (build)  Dockerfile:2  12.35 s  3.0 MiB           RUN make',
    '  stage 0 (build)  Dockerfile:3   0.00 s  no layer          ENV A=b',
    '  stage 1          Dockerfile:6   0.50 s  2.0 KiB   cached  COPY --from=build /out /app',
    '  stage 1          Dockerfile:7   1.20 s  0.5 KiB           RUN echo a very long command line that goes on and on past…',
    'pulled 45.0 MiB, pushed 3.0 MiB (1 blob mounted, 1 already there), cache 1 hit / 1 miss, phases: plan+cache lookup 0.40 s, pull+extract 2.35 s, run 13.50 s, snapshot 0.25 s, push 1.00 s',
    `built ${DIGEST}`,
  ]);
});

test('without the cache or a push, the totals say so', () => {
  const lines = formatSummary(summarizeBuild({ ...INPUT, stages: [{ index: 0, steps: [{ text: 'RUN true', line: 2, seconds: 0.1 }] }], pushed: [], pulledBytes: 0, cacheUsed: false }));
  assert.equal(lines[1], '  stage 0  Dockerfile:2  0.10 s  no layer  RUN true');
  assert.match(lines[2]!, /^pulled 0\.0 KiB, pushed nothing, cache off, phases: /);
});

test('a step written over several lines is one summary line', () => {
  const lines = formatSummary(summarizeBuild({ ...INPUT, stages: [{ index: 0, steps: [{ text: 'RUN apt-get update && \\\n    apt-get install -y gcc', line: 2, seconds: 3 }] }] }));
  assert.match(lines[1]!, /RUN apt-get update && apt-get install -y gcc$/);
});

test('with --log-format json the summary is one record with every field', () => {
  const records: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n')) if (line) records.push(JSON.parse(line));
      callback();
    },
  });
  logSummary(createLogger({ format: 'json', destination }), summarizeBuild(INPUT), true);
  assert.equal(records.length, 1);
  const { summary, msg } = records[0] as { summary: Record<string, unknown>; msg: string };
  assert.equal(msg, `built ${DIGEST}`);
  assert.deepEqual(summary, {
    digest: DIGEST,
    seconds: 17.9,
    steps: [
      { stage: 0, stageName: 'build', where: 'Dockerfile:2', text: 'RUN make', seconds: 12.35, layerBytes: 3145728, cached: null },
      { stage: 0, stageName: 'build', where: 'Dockerfile:3', text: 'ENV A=b', seconds: 0, layerBytes: null, cached: null },
      { stage: 1, where: 'Dockerfile:6', text: 'COPY --from=build /out /app', seconds: 0.5, layerBytes: 2048, cached: true },
      { stage: 1, where: 'Dockerfile:7', text: INPUT.stages[1]!.steps[1]!.text, seconds: 1.2, layerBytes: 512, cached: false },
    ],
    pulledBytes: 47185920,
    pushedBytes: 3146752,
    blobs: { uploaded: 2, mounted: 1, existing: 1 },
    cache: { hits: 1, misses: 1 },
    phases: { plan: 0.4, pull: 2.35, run: 13.5, snapshot: 0.25, push: 1 },
  });
});

test('in text the summary is several info lines', () => {
  let text = '';
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      text += chunk.toString();
      callback();
    },
  });
  logSummary(createLogger({ format: 'text', destination }), summarizeBuild(INPUT), false);
  const lines = text.trimEnd().split('\n');
  assert.equal(lines.length, 7);
  assert.ok(lines.every((line) => line.startsWith('INFO  ')));
  assert.equal(lines.at(-1), `INFO  built ${DIGEST}`);
});
