/**
 * Python's `socketserver` on selectors + socket: synchronous servers, the
 * threading (worker threads) and forking (child processes) variants, and the
 * request handlers. See docs/socketserver.md.
 */
export {
  BaseServer, TCPServer, UDPServer, UnixStreamServer, UnixDatagramServer, isExitNow,
  type HandlerClass, type HandlerModule, type ServerOptions,
} from './base.js';
export {
  ThreadingMixIn, ForkingMixIn, runnerUrl, type OffloadingServer, type ThreadingServer, type ForkingServer, type Mixed, type TCPServerCtor,
  ThreadingTCPServer, ThreadingUDPServer, ThreadingUnixStreamServer, ThreadingUnixDatagramServer,
  ForkingTCPServer, ForkingUDPServer, ForkingUnixStreamServer, ForkingUnixDatagramServer,
} from './mixins.js';
export {
  BaseRequestHandler, StreamRequestHandler, DatagramRequestHandler, SocketReader, SocketWriter, BytesWriter,
  type ServerLike, type ByteSource,
} from './handlers.js';
export { RemoteServer, type Job } from './job.js';
export { requestShutdown, type WakeMessage, type SerializedError } from './channel.js';
