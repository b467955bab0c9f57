// docker-registry writes one Apache combined-format line per request to stdout, after the
// response is sent. Tests count requests from it, e.g. how many blob GETs a cached build made.

export interface LoggedRequest {
  method: string;
  /** The URI path, without the query string. */
  path: string;
  /** The query string without `?`, or '' when there was none. */
  query: string;
  status: number;
  userAgent: string;
}

const COMBINED = /^\S+ \S+ \S+ \[[^\]]*\] "(\S+) (\S+) [^"]*" (\d{3}) \S+ "[^"]*" "([^"]*)"/;

export function parseAccessLogLine(line: string): LoggedRequest | undefined {
  const match = COMBINED.exec(line);
  if (!match) return undefined;
  const [, method, uri, status, userAgent] = match as unknown as [string, string, string, string, string];
  const q = uri.indexOf('?');
  return {
    method,
    path: q < 0 ? uri : uri.slice(0, q),
    query: q < 0 ? '' : uri.slice(q + 1),
    status: Number(status),
    userAgent,
  };
}
