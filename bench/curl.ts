// curl as the peer kiln is measured against. Times come from curl's own `time_total`, so
// neither side is charged for starting a process.
import { run } from '../integration/harness/process.js';

/** GET a blob into `file`; returns the seconds curl reports. */
export async function curlPull(url: string, file: string): Promise<number> {
  const { stdout } = await run('curl', ['-sS', '-f', '-o', file, '-w', '%{time_total}', url]);
  return Number(stdout);
}

/**
 * A monolithic upload as a shell script would do it: POST for a session, then PUT the file
 * with the digest. Returns the seconds of both requests.
 */
export async function curlPush(registryUrl: string, repo: string, file: string, digest: string): Promise<number> {
  const started = await run('curl', ['-sS', '-f', '-X', 'POST', '-o', '/dev/null', '-D', '-', '-w', '\n%{time_total}', `${registryUrl}/v2/${repo}/blobs/uploads/`]);
  const lines = started.stdout.trim().split(/\r?\n/);
  const location = lines.find((line) => /^location:/i.test(line))?.replace(/^location:\s*/i, '').trim();
  if (!location) throw new Error(`the registry gave no upload location:\n${started.stdout}`);
  const url = new URL(location, registryUrl);
  url.searchParams.set('digest', digest);
  const put = await run('curl', [
    '-sS', '-f', '-T', file, '-X', 'PUT', '-H', 'Content-Type: application/octet-stream',
    '-o', '/dev/null', '-w', '%{http_code} %{time_total}', url.toString(),
  ]);
  const [code, seconds] = put.stdout.trim().split(' ');
  if (code !== '201') throw new Error(`curl's PUT answered ${code}`);
  return Number(lines.at(-1)) + Number(seconds);
}
