/**
 * The fd-leak check every test file uses: `trackFds()` at the top of a file
 * records the open descriptor count before the first test and asserts after
 * the last that it is back where it started.
 */
import { readdirSync, readlinkSync } from 'node:fs';
import { afterAll, beforeAll, expect } from 'vitest';

/** The process's open descriptors right now (from /proc/self/fd). */
export function openFds(): number[] {
  return readdirSync('/proc/self/fd').map(Number).filter((n) => Number.isInteger(n));
}

/** How many descriptors the process holds (the readdir's own fd excluded). */
export function fdCount(): number {
  return openFds().length;
}

/** Registers before/after hooks that fail the file when it leaks descriptors. */
export function trackFds(): void {
  let before = 0;
  let beforeSet = new Set<number>();
  beforeAll(() => {
    before = fdCount();
    beforeSet = new Set(openFds());
  });
  afterAll(async () => {
    // Node's own handles (a closed net server, a child's pipes, a terminated
    // worker's event loop) close on later turns; a busy machine needs a while.
    for (let i = 0; i < 150 && fdCount() > before; i++) await new Promise((r) => setTimeout(r, 20));
    const extra = openFds()
      .filter((fd) => !beforeSet.has(fd))
      .map((fd) => {
        try {
          return `${fd}->${readlinkSync(`/proc/self/fd/${fd}`)}`;
        } catch {
          return `${fd}`;
        }
      });
    expect(fdCount(), `open descriptors after the file (fd leak; new: ${extra.join(' ')})`).toBe(before);
  });
}
