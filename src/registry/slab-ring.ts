/**
 * A few large buffers (slots) used in turn, for a download whose bytes are lent rather than
 * given away: the socket reads into a slot, its bytes are hashed and written from there, and
 * the slot is read into again once everyone it was lent to is done with it. A 1 GiB blob then
 * allocates nothing while it streams: no garbage collection, and memory that stays warm in
 * the processor's caches.
 *
 * Slots are allocated on first use, so a small blob costs one slot, not the whole ring. A
 * shared ring's slots are shared memory, which another thread can hash where it lies.
 */
export class SlabRing {
  private readonly slots: (Buffer | undefined)[];
  private readonly holds: number[];
  private at = 0;

  constructor(
    readonly slotCount: number,
    readonly slotBytes: number,
    readonly shared = false,
  ) {
    if (!(slotCount >= 2) || !(slotBytes > 0)) throw new RangeError('a ring needs at least two slots of some bytes');
    this.slots = new Array<Buffer | undefined>(slotCount).fill(undefined);
    this.holds = new Array<number>(slotCount).fill(0);
  }

  /** The slot reads go into now. */
  get current(): number {
    return this.at;
  }

  /** The memory of a slot. */
  slot(index: number): Buffer {
    let slot = this.slots[index];
    if (slot === undefined) {
      slot = this.shared ? Buffer.from(new SharedArrayBuffer(this.slotBytes)) : Buffer.allocUnsafe(this.slotBytes);
      this.slots[index] = slot;
    }
    return slot;
  }

  /** Moves on to the next slot; false while that slot is still lent (wait for its release). */
  advance(): boolean {
    this.at = (this.at + 1) % this.slotCount;
    return this.holds[this.at] === 0;
  }

  /** Whether the current slot may be read into. */
  get currentFree(): boolean {
    return this.holds[this.at] === 0;
  }

  /** Counts one more lend of bytes of `index`. */
  hold(index: number): void {
    this.holds[index]!++;
  }

  /** Ends one lend of `index`; true when that frees the current slot, which a reader may be waiting for. */
  release(index: number): boolean {
    if (this.holds[index]! <= 0) throw new RangeError(`slot ${index} released more often than held`);
    this.holds[index]!--;
    return index === this.at && this.holds[index] === 0;
  }
}
