import { describeError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { oneLine } from './lookup.js';
import type { StepKey } from './types.js';

/**
 * Cache writes that run alongside the build: each key is written once, a failure is one
 * warning line and never an error, and `settle` waits for every write still running.
 */
export class BackgroundWrites {
  private readonly pending = new Set<Promise<void>>();
  private readonly started = new Set<string>();

  constructor(
    private readonly logger: Logger,
    private readonly description: string,
  ) {}

  start(key: StepKey, write: () => Promise<void>): void {
    if (this.started.has(key.digest)) return;
    this.started.add(key.digest);
    const running: Promise<void> = write()
      .catch((err: unknown) => {
        this.logger.warn(`could not store ${key.label} in the layer cache ${this.description}: ${oneLine(describeError(err))}`);
      })
      .finally(() => this.pending.delete(running));
    this.pending.add(running);
  }

  async settle(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }
}
