/**
 * asyncore-native: Python's socket / select / selectors / asyncore /
 * asynchat / socketserver stack on raw file descriptors.
 *
 * @module asyncore-native
 */
export * from './errors.js';
export * from './socket.js';
export type { NativeAddress } from './native.js';
export { select, Poll, Epoll, toFd, type FileLike, type Waiter } from './select.js';
export * from './selectors.js';
export * from './asyncore/index.js';
export { AsyncChat, SimpleProducer, findPrefixAtEnd, type Producer, type Terminator } from './asynchat.js';
export { Fifo } from './asyncore/fifo.js';
export * from './socketserver/index.js';
