/**
 * The fd-leak check every test file uses: `trackFds()` at the top of a file
 * records the open descriptor count before the first test and asserts after
 * the last that it is back where it started.
 */
import { readdirSync } from 'node:fs';
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
  beforeAll(() => {
    before = fdCount();
  });
  afterAll(async () => {
    // Node's own handles (a closed net server, a child's pipes) close on the next turns.
    for (let i = 0; i < 50 && fdCount() > before; i++) await new Promise((r) => setTimeout(r, 20));
    expect(fdCount(), 'open descriptors after the file (fd leak)').toBe(before);
  });
}
