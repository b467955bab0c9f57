// A single GET to a registry from the harness itself, marked with its own User-Agent so the
// registry's access log can tell the harness's probes from the traffic under test.
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

export const PROBE_USER_AGENT = 'kiln-test-harness-probe';

/** Resolves with the status code; rejects on a connection error or after `timeoutMs`. */
export function probe(url: string, ca?: string, timeoutMs = 2000): Promise<number> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(target, { method: 'GET', headers: { 'User-Agent': PROBE_USER_AGENT }, ca, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}
