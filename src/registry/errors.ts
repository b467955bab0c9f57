import { KilnError, type ErrorCode } from '../util/errors.js';
import type { HttpResponse } from './transport.js';

/** The distribution spec's error body: `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"…"}]}`. */
export async function readRegistryErrors(response: HttpResponse): Promise<string> {
  let text: string;
  try {
    text = (await response.body.text()).slice(0, 4096);
  } catch {
    return '';
  }
  try {
    const parsed = JSON.parse(text) as { errors?: { code?: string; message?: string }[] };
    if (Array.isArray(parsed.errors) && parsed.errors.length > 0) {
      return parsed.errors.map((e) => [e.code, e.message].filter(Boolean).join(': ')).join('; ');
    }
  } catch {
    // Not JSON: fall through to the first line of text.
  }
  return text.split('\n')[0]!.trim().slice(0, 200);
}

/** Turns an unexpected status into one sentence; `what` is e.g. "pushing manifest of host/repo:tag". */
export async function unexpectedStatus(response: HttpResponse, host: string, what: string): Promise<KilnError> {
  const detail = await readRegistryErrors(response);
  const suffix = detail ? ` (${detail})` : '';
  const code: ErrorCode =
    response.status === 404 ? 'REGISTRY_NOT_FOUND'
    : response.status === 403 ? 'REGISTRY_DENIED'
    : response.status === 401 ? 'REGISTRY_AUTH'
    : response.status >= 500 ? 'REGISTRY_SERVER'
    : 'REGISTRY_PROTOCOL';
  const advice =
    code === 'REGISTRY_DENIED' ? '; check that the credentials may access that repository'
    : code === 'REGISTRY_SERVER' ? '; the registry failed, try again later'
    : '';
  return new KilnError(code, `${host} answered HTTP ${response.status} ${what}${suffix}${advice}.`);
}
