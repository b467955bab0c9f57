const HOUR_MS = 60 * 60 * 1000;

/**
 * Why an entry cached at `created` may no longer be used, or undefined while it is fresh.
 * An entry dated in the future (a node with a fast clock wrote it) counts as fresh.
 */
export function expiredReason(created: Date, ttlMs: number, now: Date): string | undefined {
  if (now.getTime() - created.getTime() <= ttlMs) return undefined;
  return `expired: cached ${created.toISOString()}, --cache-ttl is ${formatTtl(ttlMs)}`;
}

/** A TTL as kaniko users write it: hours, e.g. "336h" or "0.5h". */
export function formatTtl(ttlMs: number): string {
  return `${Number((ttlMs / HOUR_MS).toFixed(3))}h`;
}
