/** asyncore: dispatchers in a map, driven by select, poll or epoll. */
export { socketMap, ChannelMap, watchMap, notifyMap, type Channel, type SocketMap, type MapChange } from './map.js';
export { Dispatcher, DispatcherWithSend, FileWrapper, FileDispatcher, compactTraceback, DISCONNECTED, errnoText, type SocketLike } from './dispatcher.js';
export { loop, poll, poll2, pollEpoll, pollSelector, readwrite, read, write, exception, _exception, closeAll, releaseEpoll, toWaitMs, logTimerError, type LoopOptions, type Backend } from './loop.js';
export { loopAsync, type LoopAsyncOptions } from './async.js';
export { ExitNow, Interrupted } from '../errors.js';
export { callLater, callEvery, DelayedCall, type CallOptions } from './timers.js';
export { SignalTrap } from './signals.js';
