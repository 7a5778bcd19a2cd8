/**
 * One "wait for events on fds" API over the three pollers of src/select.ts,
 * so a readiness test body runs unchanged against select(), Poll and Epoll.
 *
 * Interest and readiness are spoken in poll(2) bits (POLLIN, POLLOUT, POLLPRI,
 * POLLRDHUP; results may add POLLHUP, POLLERR, POLLNVAL). On Linux the EPOLL*
 * values equal the POLL* ones; the select adapter maps its three lists onto
 * POLLIN / POLLOUT / POLLPRI and can express nothing else (see `caps`).
 */
import {
  Epoll, HAVE_EPOLL, Poll, select,
  POLLIN, POLLOUT, POLLPRI, POLLERR, POLLHUP, POLLNVAL, POLLRDHUP,
  EPOLLIN, EPOLLOUT, EPOLLPRI, EPOLLERR, EPOLLHUP, EPOLLRDHUP,
} from '../../src/select.js';

/** A registered set of fds that can be waited on. */
export interface PollerAdapter {
  register(fd: number, events: number): void;
  modify(fd: number, events: number): void;
  unregister(fd: number): void;
  /** Waits up to `timeoutMs` (negative: forever); returns fd → revents (poll bits). */
  wait(timeoutMs: number): Map<number, number>;
  close(): void;
}

export interface PollerKind {
  name: 'select' | 'poll' | 'epoll';
  /** Why the poller cannot run here, or null when it can. */
  missing: string | null;
  caps: {
    /** Reports POLLHUP / POLLERR by themselves. */
    hup: boolean;
    /** Reports POLLNVAL for a closed fd (select and epoll fail instead). */
    nval: boolean;
    /** Understands POLLRDHUP / EPOLLRDHUP interest. */
    rdhup: boolean;
  };
  create(): PollerAdapter;
}

class SelectAdapter implements PollerAdapter {
  private interest = new Map<number, number>();
  register(fd: number, events: number): void {
    this.interest.set(fd, events);
  }
  modify(fd: number, events: number): void {
    if (!this.interest.has(fd)) throw new Error(`fd ${fd} is not registered`);
    this.interest.set(fd, events);
  }
  unregister(fd: number): void {
    this.interest.delete(fd);
  }
  wait(timeoutMs: number): Map<number, number> {
    const r: number[] = [], w: number[] = [], x: number[] = [];
    for (const [fd, ev] of this.interest) {
      if (ev & POLLIN) r.push(fd);
      if (ev & POLLOUT) w.push(fd);
      if (ev & POLLPRI) x.push(fd);
    }
    const [rr, ww, xx] = select(r, w, x, timeoutMs < 0 ? null : timeoutMs / 1000);
    const out = new Map<number, number>();
    const add = (fd: number, bit: number) => out.set(fd, (out.get(fd) ?? 0) | bit);
    for (const fd of rr) add(fd, POLLIN);
    for (const fd of ww) add(fd, POLLOUT);
    for (const fd of xx) add(fd, POLLPRI);
    return out;
  }
  close(): void {
    this.interest.clear();
  }
}

class PollAdapter implements PollerAdapter {
  private p = new Poll();
  register(fd: number, events: number): void {
    this.p.register(fd, events);
  }
  modify(fd: number, events: number): void {
    this.p.modify(fd, events);
  }
  unregister(fd: number): void {
    this.p.unregister(fd);
  }
  wait(timeoutMs: number): Map<number, number> {
    return new Map(this.p.poll(timeoutMs));
  }
  close(): void {}
}

// The adapter speaks poll bits; on Linux each EPOLL* bit has the POLL* value,
// which the table below checks instead of assuming.
const POLL_TO_EPOLL: Array<[number, number]> = [
  [POLLIN, EPOLLIN], [POLLOUT, EPOLLOUT], [POLLPRI, EPOLLPRI], [POLLERR, EPOLLERR],
  [POLLHUP, EPOLLHUP], [POLLRDHUP, EPOLLRDHUP],
];
const toEpoll = (ev: number): number => {
  let out = ev & ~POLL_TO_EPOLL.reduce((m, [p]) => m | p, 0);
  for (const [p, e] of POLL_TO_EPOLL) if (ev & p) out |= e;
  return out >>> 0;
};
const fromEpoll = (ev: number): number => {
  let out = 0;
  for (const [p, e] of POLL_TO_EPOLL) if (ev & e) out |= p;
  return out;
};

class EpollAdapter implements PollerAdapter {
  readonly ep = new Epoll();
  register(fd: number, events: number): void {
    this.ep.register(fd, toEpoll(events));
  }
  modify(fd: number, events: number): void {
    this.ep.modify(fd, toEpoll(events));
  }
  unregister(fd: number): void {
    this.ep.unregister(fd);
  }
  wait(timeoutMs: number): Map<number, number> {
    return new Map(this.ep.poll(timeoutMs < 0 ? null : timeoutMs / 1000).map(([fd, ev]) => [fd, fromEpoll(ev)]));
  }
  close(): void {
    this.ep.close();
  }
}

export const pollerKinds: PollerKind[] = [
  { name: 'select', missing: null, caps: { hup: false, nval: false, rdhup: false }, create: () => new SelectAdapter() },
  { name: 'poll', missing: null, caps: { hup: true, nval: true, rdhup: POLLRDHUP !== 0 }, create: () => new PollAdapter() },
  {
    name: 'epoll',
    missing: HAVE_EPOLL ? null : 'epoll(7) exists only on Linux',
    caps: { hup: true, nval: false, rdhup: EPOLLRDHUP !== 0 },
    create: () => new EpollAdapter(),
  },
];

/** Registers `fd` for `events` on a fresh poller of `kind`, waits once, closes it; returns the fd's revents (0: none). */
export function waitFor(kind: PollerKind, fd: number, events: number, timeoutMs: number): number {
  const p = kind.create();
  try {
    p.register(fd, events);
    return p.wait(timeoutMs).get(fd) ?? 0;
  } finally {
    p.close();
  }
}
