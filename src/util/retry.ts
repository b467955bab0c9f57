import { isKilnError, type ErrorCode } from './errors.js';
import type { Logger } from './log.js';

/** Failures worth running a whole operation again for (kaniko's --push-retry, --image-download-retry). */
const TRANSIENT: readonly ErrorCode[] = ['REGISTRY_SERVER', 'REGISTRY_UNREACHABLE', 'IO'];

/**
 * Runs `operation` and, on a transient failure, up to `retries` more times with a growing
 * pause. Request-level retries happen below this; this is the user's extra safety net.
 */
export async function retryOperation<T>(retries: number, what: string, logger: Logger, operation: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await operation();
    } catch (err) {
      const transient = TRANSIENT.some((code) => isKilnError(err, code));
      if (!transient || attempt >= retries) throw err;
      const delay = 1000 * 2 ** attempt;
      logger.warn(`${what} failed (${(err as Error).message}); retrying in ${delay / 1000} s (${attempt + 1} of ${retries})`);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}
