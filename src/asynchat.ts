/**
 * asynchat: `AsyncChat`, a dispatcher for framed protocols, and `SimpleProducer`.
 *
 * Input is split by a terminator: bytes (a string is UTF-8), an integer byte
 * count, or null (everything). Each chunk goes to `collectIncomingData`;
 * reaching the terminator calls `foundTerminator`. A bytes terminator split
 * across reads is still found; an integer one counts down across reads (and
 * is 0 after it is reached, which then collects everything, as Python).
 * Output: `push` queues bytes in pieces of `acOutBufferSize`;
 * `pushWithProducer` queues an object whose `more()` yields bytes until an
 * empty result; `closeWhenDone` closes once the queue has drained.
 *
 * Methods for callers: setTerminator, getTerminator, push, pushWithProducer,
 * closeWhenDone, initiateSend, discardBuffers. Hooks: collectIncomingData,
 * foundTerminator (both required), handleClose.
 *
 * Deliberate differences: strings are accepted by `push` and
 * `setTerminator` (UTF-8); Python raises TypeError for str data and
 * compares a str terminator against bytes (never matching).
 */
import { Dispatcher } from './asyncore/dispatcher.js';
import type { SocketMap } from './asyncore/map.js';
import { Socket, toBytes, type BytesLike } from './socket.js';

/** Something `pushWithProducer` accepts: `more()` returns the next bytes, empty when done. */
export interface Producer {
  more(): BytesLike;
}

/** A terminator: bytes, a byte count, or null. */
export type Terminator = Uint8Array | string | number | null;

type OutItem = Uint8Array | Producer | null;

/** Python's `find_prefix_at_end`: the length of the longest proper prefix of `needle` that ends `haystack`. */
export function findPrefixAtEnd(haystackLike: BytesLike, needleLike: BytesLike): number {
  const haystack = toBytes(haystackLike), needle = toBytes(needleLike);
  for (let l = needle.length - 1; l > 0; l--) {
    if (haystack.length < l) continue;
    let ok = true;
    const off = haystack.length - l;
    for (let i = 0; i < l && ok; i++) ok = haystack[off + i] === needle[i];
    if (ok) return l;
  }
  return 0;
}

/** asynchat's `async_chat`: subclass it and implement collectIncomingData and foundTerminator. */
export class AsyncChat extends Dispatcher {
  /** Its `readable()` / `writable()` read the queue and `connected`; push, producers and closeWhenDone announce changes. */
  static override reportsInterest = true;

  /** Bytes read per recv (default 65536). */
  acInBufferSize = 65536;
  /** Largest piece sent per send (default 65536). */
  acOutBufferSize = 65536;
  /** Bytes read but not yet consumed by the terminator logic. */
  acInBuffer: Buffer = Buffer.alloc(0);
  /** What the default collector gathered (see `getData`). */
  incoming: Buffer[] = [];
  /** The output queue: bytes, producers, and null for "close when done". */
  producerFifo: OutItem[] = [];
  terminator: Uint8Array | number | null = null;

  constructor(sock?: Socket | null, map?: SocketMap) {
    super(sock, map);
  }

  /** Hook: a chunk of input that precedes the terminator. */
  collectIncomingData(_data: Buffer): void {
    throw new Error('collectIncomingData must be implemented in a subclass');
  }

  /** Hook: the terminator was reached. */
  foundTerminator(): void {
    throw new Error('foundTerminator must be implemented in a subclass');
  }

  /** A collector subclasses may use: gathers chunks into `incoming`. */
  protected _collectIncomingData(data: Buffer): void {
    this.incoming.push(data);
  }

  /** The gathered chunks as one Buffer; `incoming` is emptied. */
  protected _getData(): Buffer {
    const d = Buffer.concat(this.incoming);
    this.incoming = [];
    return d;
  }

  /**
   * Bytes (a string is UTF-8), a non-negative byte count, or null.
   * RangeError for a negative count; TypeError for anything else.
   */
  setTerminator(term: Terminator): void {
    if (term === null || term === undefined) {
      this.terminator = null;
    } else if (typeof term === 'number') {
      if (!Number.isInteger(term)) throw new TypeError('an integer terminator must be an integer');
      if (term < 0) throw new RangeError('the number of received bytes must be positive');
      this.terminator = term;
    } else if (typeof term === 'string' || term instanceof Uint8Array) {
      this.terminator = Buffer.from(toBytes(term));
    } else {
      throw new TypeError('terminator must be bytes, a string, an integer or null');
    }
  }

  getTerminator(): Uint8Array | number | null {
    return this.terminator;
  }

  override handleRead(): void {
    let data: Buffer;
    try {
      data = this.recv(this.acInBufferSize);
    } catch (err) {
      this.handleError(err);
      return;
    }
    if (data.length === 0) return;
    this.acInBuffer = this.acInBuffer.length ? Buffer.concat([this.acInBuffer, data]) : data;
    // Each step consumes input or stops; a foundTerminator hook may change
    // the terminator (or close) between steps.
    while (this.acInBuffer.length > 0) {
      const buf = this.acInBuffer;
      const lb = buf.length;
      const term = this.getTerminator();
      if (term === null || term === 0 || (typeof term !== 'number' && term.length === 0)) {
        this.acInBuffer = Buffer.alloc(0);
        this.collectIncomingData(buf);
      } else if (typeof term === 'number') {
        if (lb < term) {
          this.acInBuffer = Buffer.alloc(0);
          this.terminator = term - lb;
          this.collectIncomingData(buf);
        } else {
          this.acInBuffer = buf.subarray(term);
          this.terminator = 0;
          this.collectIncomingData(buf.subarray(0, term));
          this.foundTerminator();
        }
      } else {
        const index = buf.indexOf(term);
        if (index !== -1) {
          if (index > 0) this.collectIncomingData(buf.subarray(0, index));
          this.acInBuffer = buf.subarray(index + term.length);
          this.foundTerminator();
        } else {
          const keep = findPrefixAtEnd(buf, term);
          if (keep) {
            if (keep !== lb) {
              this.acInBuffer = buf.subarray(lb - keep);
              this.collectIncomingData(buf.subarray(0, lb - keep));
            }
            break;
          }
          this.acInBuffer = Buffer.alloc(0);
          this.collectIncomingData(buf);
        }
      }
    }
  }

  override handleWrite(): void {
    this.initiateSend();
  }

  override handleClose(): void {
    this.close();
  }

  /** Queues `data` (a string is UTF-8), split into `acOutBufferSize` pieces, and tries to send. */
  push(data: BytesLike | ArrayBufferView): void {
    if (!ArrayBuffer.isView(data) && typeof data !== 'string')
      throw new TypeError(`data argument must be bytes or a string, not ${data === null ? 'null' : typeof data}`);
    const b = Buffer.from(toBytes(data));
    const size = this.acOutBufferSize;
    if (b.length > size) {
      for (let i = 0; i < b.length; i += size) this.producerFifo.push(b.subarray(i, i + size));
    } else {
      this.producerFifo.push(b);
    }
    this.queued();
  }

  /** Queues a producer (or plain bytes, sent as one piece) and tries to send. */
  pushWithProducer(producer: Producer | BytesLike): void {
    if (typeof producer === 'string' || ArrayBuffer.isView(producer)) {
      this.producerFifo.push(Buffer.from(toBytes(producer)));
    } else if (producer !== null && typeof producer === 'object' && typeof producer.more === 'function') {
      this.producerFifo.push(producer);
    } else {
      throw new TypeError('producer must have a more() method, or be bytes');
    }
    this.queued();
  }

  private queued(): void {
    const wasIdle = !this.writable();
    this.initiateSend();
    if (wasIdle || this.producerFifo.length > 0) this.interestChanged();
  }

  override readable(): boolean {
    return true;
  }

  override writable(): boolean {
    return this.producerFifo.length > 0 || !this.connected;
  }

  /** Closes the channel once everything queued before this call is sent. */
  closeWhenDone(): void {
    this.producerFifo.push(null);
    this.interestChanged();
  }

  /** Sends the head of the queue (one send per call, as asynchat). */
  initiateSend(): void {
    while (this.producerFifo.length > 0 && this.connected) {
      const first = this.producerFifo[0];
      if (first === null) {
        this.producerFifo.shift();
        this.handleClose();
        return;
      }
      if (!(first instanceof Uint8Array)) {
        const more = first.more();
        const data = more === undefined || more === null ? Buffer.alloc(0) : toBytes(more);
        if (data.length > 0) this.producerFifo.unshift(data);
        else this.producerFifo.shift();
        continue;
      }
      if (first.length === 0) {
        this.producerFifo.shift();
        continue;
      }
      const obs = this.acOutBufferSize;
      const data = first.length > obs ? first.subarray(0, obs) : first;
      let sent: number;
      try {
        sent = this.send(data);
      } catch (err) {
        this.handleError(err);
        return;
      }
      if (sent) {
        if (sent < first.length) this.producerFifo[0] = first.subarray(sent);
        else this.producerFifo.shift();
      }
      return;
    }
  }

  /** Drops all buffered input and queued output. */
  discardBuffers(): void {
    this.acInBuffer = Buffer.alloc(0);
    this.incoming = [];
    this.producerFifo = [];
  }
}

/** Yields `data` in pieces of `bufferSize` bytes (default 512). */
export class SimpleProducer implements Producer {
  data: Buffer;
  bufferSize: number;
  constructor(data: BytesLike, bufferSize = 512) {
    if (!Number.isInteger(bufferSize) || bufferSize <= 0) throw new RangeError('bufferSize must be a positive integer');
    this.data = Buffer.from(toBytes(data));
    this.bufferSize = bufferSize;
  }
  more(): Buffer {
    if (this.data.length > this.bufferSize) {
      const r = this.data.subarray(0, this.bufferSize);
      this.data = this.data.subarray(this.bufferSize);
      return r;
    }
    const r = this.data;
    this.data = Buffer.alloc(0);
    return r;
  }
}
