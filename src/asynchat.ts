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
 * empty result; `closeWhenDone` closes once the queue has drained. Each
 * writable event makes one send of up to `acOutBufferSize` bytes, gathered
 * from the queued bytes at the head (asynchat sends one item per event).
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
import { Fifo } from './asyncore/fifo.js';
import { Socket, toBytes, type BytesLike } from './socket.js';

/** Something `pushWithProducer` accepts: `more()` returns the next bytes, empty when done. */
export interface Producer {
  /**
   * Called by `initiateSend` each time the producer reaches the head of the
   * queue: the next bytes (a string is UTF-8) to send; an empty result (or
   * undefined / null) means the producer is done and is dropped. Something
   * other than bytes or a string is a TypeError, which goes to `handleError`
   * when the send ran from the loop.
   */
  more(): BytesLike;
}

/** A terminator: bytes, a byte count, or null. */
export type Terminator = Uint8Array | string | number | null;

/**
 * An entry of `AsyncChat#producerFifo`: bytes to send, a producer, or null
 * ("close when done").
 * @inline
 */
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
  /**
   * The output queue (Python's deque `producer_fifo`): bytes, producers, and
   * null for "close when done". A `Fifo`: `length`, `peek()`, `at(i)`,
   * `push`, `unshift`, `shift` are O(1), however long a peer that reads
   * nothing lets it grow.
   */
  producerFifo: Fifo<OutItem> = new Fifo();
  /**
   * The current terminator, as `setTerminator` stored it: a Buffer, a count
   * of bytes still to read (counted down by `handleRead`, 0 once reached),
   * or null. Set it with `setTerminator`, which checks the value.
   */
  terminator: Uint8Array | number | null = null;

  /**
   * As `Dispatcher`'s: `sock`, an existing connected socket (made
   * nonblocking and joined to `map`, default socketMap), or none for
   * `createSocket` + `connect` later. The terminator starts as null.
   * OSError from getpeername other than ENOTCONN / EINVAL propagates.
   */
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

  /** The current terminator (`terminator`): a Buffer, the bytes still to read, or null. */
  getTerminator(): Uint8Array | number | null {
    return this.terminator;
  }

  /**
   * Called on a readable event: reads up to `acInBufferSize` bytes and
   * splits them by the terminator, calling `collectIncomingData` for each
   * chunk and `foundTerminator` each time it is reached (the terminator may
   * change between calls). An error from `recv` goes to `handleError`; EOF
   * closes through `handleClose`. Bytes that may begin a split terminator
   * wait in `acInBuffer` for the next read.
   */
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

  /** Called on a writable event: one send from the queue (`initiateSend`). */
  override handleWrite(): void {
    this.initiateSend();
  }

  /**
   * Hook: the connection is over (EOF, a disconnection errno, `handleError`,
   * or a `closeWhenDone` marker reached). The default closes the channel
   * (asynchat's); an override should call `close()` too. Runs at most once
   * per connection, as `Dispatcher#handleClose`.
   */
  override handleClose(): void {
    this.close();
  }

  /**
   * Queues `data` (a string is UTF-8), split into `acOutBufferSize` pieces.
   * Sent at once when the queue was empty; behind queued output it waits
   * for the next writable event (the socket was full at the last try).
   */
  push(data: BytesLike | ArrayBufferView): void {
    if (!ArrayBuffer.isView(data) && typeof data !== 'string')
      throw new TypeError(`data argument must be bytes or a string, not ${data === null ? 'null' : typeof data}`);
    const b = Buffer.from(toBytes(data));
    const wasEmpty = this.producerFifo.length === 0;
    const size = this.acOutBufferSize;
    if (b.length > size) {
      for (let i = 0; i < b.length; i += size) this.producerFifo.push(b.subarray(i, i + size));
    } else {
      this.producerFifo.push(b);
    }
    this.queued(wasEmpty);
  }

  /** Queues a producer (or plain bytes, sent as one piece); sends as `push` does. */
  pushWithProducer(producer: Producer | BytesLike): void {
    const wasEmpty = this.producerFifo.length === 0;
    if (typeof producer === 'string' || ArrayBuffer.isView(producer)) {
      this.producerFifo.push(Buffer.from(toBytes(producer)));
    } else if (producer !== null && typeof producer === 'object' && typeof producer.more === 'function') {
      this.producerFifo.push(producer);
    } else {
      throw new TypeError('producer must have a more() method, or be bytes');
    }
    this.queued(wasEmpty);
  }

  // Called after an item joined the queue. Only a queue that was empty is
  // sent at once: trying behind queued output would repeat a send(2) (and a
  // gather) per push while the socket stays full.
  private queued(wasEmpty: boolean): void {
    if (!wasEmpty) return;
    this.initiateSend();
    // writable() turned true with the first item (and may be false again if all of it went out).
    this.interestChanged();
  }

  /** Always true, as asynchat's (input is never throttled; `acInBufferSize` only sizes each read). */
  override readable(): boolean {
    return true;
  }

  /** True while output is queued, and before the channel is connected (so a connect's completion is seen). */
  override writable(): boolean {
    return this.producerFifo.length > 0 || !this.connected;
  }

  /** Closes the channel once everything queued before this call is sent. */
  closeWhenDone(): void {
    this.producerFifo.push(null);
    this.interestChanged();
  }

  /**
   * One send per call, as asynchat, of up to `acOutBufferSize` bytes: the
   * bytes at the head of the queue, gathered from consecutive queued items
   * (asynchat sends one item per call, so a queue of small replies took one
   * pass each). Producers are asked for more when they reach the head; a
   * null closes once everything before it is sent.
   */
  initiateSend(): void {
    if (this.producerFifo.length === 0) return;
    this.sendHead();
    // Drained: writable() may have turned false (called from outside a handler too).
    if (this.producerFifo.length === 0) this.interestChanged();
  }

  private sendHead(): void {
    const fifo = this.producerFifo;
    while (fifo.length > 0 && this.connected) {
      const first = fifo.peek()!;
      if (first === null) {
        fifo.shift();
        this.handleClose();
        return;
      }
      if (!(first instanceof Uint8Array)) {
        const more = first.more();
        const data = more === undefined || more === null ? Buffer.alloc(0) : toBytes(more);
        if (data.length > 0) fifo.unshift(data);
        else fifo.shift();
        continue;
      }
      if (first.length === 0) {
        fifo.shift();
        continue;
      }
      const data = this.gather(first);
      let sent: number | undefined;
      try {
        sent = this.send(data);
      } catch (err) {
        this.handleError(err);
        return;
      }
      if (sent) this.consume(sent);
      return;
    }
  }

  /**
   * The next send's bytes: `first` alone (or its first acOutBufferSize
   * bytes), or a copy of it and the queued bytes right behind it, up to
   * acOutBufferSize. A copy, not a shared scratch: an overridden `send` may
   * keep what it is given.
   */
  private gather(first: Uint8Array): Uint8Array {
    const obs = this.acOutBufferSize;
    if (first.length >= obs) return first.length > obs ? first.subarray(0, obs) : first;
    const fifo = this.producerFifo;
    const parts: Uint8Array[] = [first];
    let total = first.length;
    for (let i = 1; i < fifo.length && total < obs; i++) {
      const item = fifo.at(i);
      if (!(item instanceof Uint8Array)) break;
      const take = Math.min(item.length, obs - total);
      parts.push(take === item.length ? item : item.subarray(0, take));
      total += take;
    }
    return parts.length === 1 ? first : Buffer.concat(parts, total);
  }

  /** Drops `n` sent bytes from the head of the queue. */
  private consume(n: number): void {
    const fifo = this.producerFifo;
    let rest = n;
    while (rest > 0) {
      const item = fifo.peek();
      if (!(item instanceof Uint8Array)) return; // a send override reported more than it was given
      if (rest < item.length) {
        fifo.setFirst(item.subarray(rest));
        return;
      }
      rest -= item.length;
      fifo.shift();
    }
  }

  /** Drops all buffered input and queued output. */
  discardBuffers(): void {
    this.acInBuffer = Buffer.alloc(0);
    this.incoming = [];
    const had = this.producerFifo.length > 0;
    this.producerFifo.clear();
    if (had) this.interestChanged();
  }
}

/** Yields `data` in pieces of `bufferSize` bytes (default 512). */
export class SimpleProducer implements Producer {
  /** The bytes not yet produced (a private copy, shortened by each `more()`). */
  data: Buffer;
  /** The most bytes one `more()` returns. */
  bufferSize: number;
  /**
   * Copies `data` (a string is UTF-8). RangeError unless `bufferSize` is a
   * positive integer; TypeError when `data` is not bytes or a string.
   */
  constructor(data: BytesLike, bufferSize = 512) {
    if (!Number.isInteger(bufferSize) || bufferSize <= 0) throw new RangeError('bufferSize must be a positive integer');
    this.data = Buffer.from(toBytes(data));
    this.bufferSize = bufferSize;
  }
  /** The next piece of at most `bufferSize` bytes (a view of `data`, not a copy); empty once all of it was produced. */
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
