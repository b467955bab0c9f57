/** The parts of a build the summary times. */
export const PHASES = ['plan', 'pull', 'run', 'snapshot', 'push'] as const;
export type Phase = (typeof PHASES)[number];

/** How the summary names each phase. */
export const PHASE_NAMES: Readonly<Record<Phase, string>> = {
  plan: 'plan+cache lookup',
  pull: 'pull+extract',
  run: 'run',
  snapshot: 'snapshot',
  push: 'push',
};

interface Open {
  phase: Phase;
}

/**
 * Seconds per phase, each moment counted once: phases nest (a COPY --from an image pulls it
 * while the COPY runs; a stage needed by a COPY is built inside it), and the innermost one
 * gets the time, so the phases add up to no more than the build took.
 */
export class PhaseClock {
  private readonly totals = new Map<Phase, number>();
  private readonly open: Open[] = [];
  private since: number;

  constructor(private readonly now: () => number = () => performance.now()) {
    this.since = now();
  }

  async time<T>(phase: Phase, work: () => Promise<T>): Promise<T> {
    const entry = this.enter(phase);
    try {
      return await work();
    } finally {
      this.leave(entry);
    }
  }

  /** Seconds so far, for every phase (0 for one that never ran). */
  seconds(): Record<Phase, number> {
    this.settle();
    return Object.fromEntries(PHASES.map((phase) => [phase, (this.totals.get(phase) ?? 0) / 1000])) as Record<Phase, number>;
  }

  private enter(phase: Phase): Open {
    this.settle();
    const entry = { phase };
    this.open.push(entry);
    return entry;
  }

  private leave(entry: Open): void {
    this.settle();
    // Work that overlaps (two stages at once) may end out of order.
    const at = this.open.lastIndexOf(entry);
    if (at >= 0) this.open.splice(at, 1);
  }

  private settle(): void {
    const now = this.now();
    const top = this.open.at(-1);
    if (top) this.totals.set(top.phase, (this.totals.get(top.phase) ?? 0) + (now - this.since));
    this.since = now;
  }
}
