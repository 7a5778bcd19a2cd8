/**
 * Dispatcher.recv hands out views of a shared receive slab (no copy per read):
 * every Buffer it returned must keep its bytes after later reads, across slab
 * changes, for small and large reads alike.
 */
import { describe, expect, it } from 'vitest';
import { ChannelMap, Dispatcher } from '../src/asyncore/index.js';
import { socketpair } from '../src/socket.js';

describe('Dispatcher.recv results are independent of later reads', () => {
  it('keeps every returned Buffer intact over more than one slab of reads', () => {
    const [a, b] = socketpair();
    const map = new ChannelMap();
    const d = new Dispatcher(a, map);
    try {
      const kept: Array<[Buffer, number]> = [];
      // 64 KiB reads retire a 256 KiB slab every few reads; 700 B reads fill one slowly.
      for (let i = 0; i < 40; i++) {
        const len = i % 3 === 0 ? 65536 : 700;
        const fill = i & 0xff;
        const out = Buffer.alloc(len, fill);
        let sent = 0;
        const got: Buffer[] = [];
        let gotLen = 0;
        while (gotLen < len) {
          if (sent < len) sent += b.send(out.subarray(sent));
          const r = d.recv(65536);
          got.push(r);
          gotLen += r.length;
        }
        for (const g of got) kept.push([g, fill]);
      }
      for (const [buf, fill] of kept) expect(buf.every((x) => x === fill)).toBe(true);
      // A read larger than the slab's limit gets a Buffer of its own.
      b.send(Buffer.alloc(10, 7));
      const big = d.recv(200_000);
      expect(big.length).toBe(10);
      expect(big.every((x) => x === 7)).toBe(true);
    } finally {
      d.close();
      b.close();
    }
  });
});
