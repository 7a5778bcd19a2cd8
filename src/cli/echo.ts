/**
 * `asyncore-native echo`: an echo server. Each connection is a relay end
 * paired with itself, so echo has the relay's bounded memory (a client that
 * sends without reading is stopped at the high-water mark) and its
 * half-close (the client's shutdown(SHUT_WR) is answered by ours once every
 * echoed byte is written).
 */
import type { Socket } from '../socket.js';
import { acceptedEnd, pair } from './relay.js';
import { Server, describeError, type ServerOptions } from './server.js';
import { formatBytes } from './log.js';
import { IDLE_TIMEOUT_OPTION, idleTimeoutOption, type Command } from './command.js';

export class EchoServer extends Server {
  constructor(options: ServerOptions = {}) {
    super(options);
  }

  handleConnection(sock: Socket, peer: string): void {
    const id = this.logger.nextId();
    const t0 = performance.now();
    const end = acceptedEnd(sock, this.map);
    this.idleTimeoutFor(id, () => end.close())?.attach(end);
    pair(end, end);
    this.logger.conn(`#${id} open ${peer}`);
    end.onError = (_e, err) => this.logger.error(`#${id} error: ${describeError(err)}`);
    end.onClosed = () =>
      this.logger.conn(`#${id} close ${peer} echoed ${formatBytes(end.bytesOut)} in ${((performance.now() - t0) / 1000).toFixed(3)} s`);
  }
}

export const echoCommand: Command = {
  name: 'echo',
  summary: 'echo server: sends back every byte it receives',
  synopsis: '--listen HOST:PORT|[V6]:PORT|unix:PATH [options]',
  description:
    'Echoes every byte back to its sender. A client that half-closes (shutdown SHUT_WR) gets\n' +
    'its remaining echo, then EOF. A client that sends without reading is stopped at 256 KiB\n' +
    'of unsent echo until it reads. With --idle-timeout, a connection that moves no byte\n' +
    'either way for that long is closed. With port 0 the bound address is printed on stdout.',
  options: {
    listen: { value: 'ADDR', required: true, help: 'where to listen: HOST:PORT, [V6]:PORT or unix:PATH' },
    'idle-timeout': IDLE_TIMEOUT_OPTION,
  },
  create: (opts, logger) => new EchoServer({ logger, idleTimeout: idleTimeoutOption(opts) }),
};
