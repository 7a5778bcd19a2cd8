/**
 * `asyncore-native forward`: a TCP (or Unix) port forwarder. Each accepted
 * client gets an upstream connection to `--to`; the two are relayed with
 * backpressure and half-close (see relay.ts). A host name in `--to` is
 * resolved per connection without blocking other connections; every address
 * it resolves to is tried in turn. When no upstream connection can be made
 * (refused, unreachable, timed out, no such host) the client is closed: it
 * reads EOF after its pending input is discarded.
 */
import type { Socket } from '../socket.js';
import { formatEndpoint, resolveEndpoint, type Endpoint } from './address.js';
import { formatBytes } from './log.js';
import { parseSeconds } from './args.js';
import { IDLE_TIMEOUT_OPTION, endpointOption, idleTimeoutOption, type Command } from './command.js';
import { acceptedEnd, connectAny, pair, type Connecting, type RelayEnd } from './relay.js';
import { Server, describeError, type ServerOptions } from './server.js';

export interface ForwardOptions extends ServerOptions {
  /** Where connections go. */
  to: Endpoint;
  /** Seconds an upstream connect may take (default 10). */
  connectTimeout?: number;
}

export class ForwardServer extends Server {
  readonly to: Endpoint;
  readonly connectTimeoutMs: number;

  constructor(options: ForwardOptions) {
    super(options);
    this.to = options.to;
    this.connectTimeoutMs = Math.ceil((options.connectTimeout ?? 10) * 1000);
  }

  handleConnection(sock: Socket, peer: string): void {
    const id = this.logger.nextId();
    const t0 = performance.now();
    const target = formatEndpoint(this.to);
    const client = acceptedEnd(sock, this.map);
    let upstream: RelayEnd | null = null;
    const idle = this.idleTimeoutFor(id, () => {
      client.close();
      upstream?.close();
    });
    idle?.attach(client);
    let connecting: Connecting | null = null;
    let failure = '';
    this.logger.conn(`#${id} open ${peer} -> ${target}`);

    const onError = (_e: RelayEnd, err: unknown) => this.logger.error(`#${id} error: ${describeError(err)}`);
    let logged = false;
    const ended = () => {
      if (logged || !client.closed || (upstream !== null && !upstream.closed)) return;
      logged = true;
      const secs = ((performance.now() - t0) / 1000).toFixed(3);
      const how = failure ? `failed: ${failure}` : `sent ${formatBytes(client.bytesIn)} received ${formatBytes(client.bytesOut)}`;
      this.logger.conn(`#${id} close ${peer} -> ${target} ${how} in ${secs} s`);
    };
    const fail = (why: string) => {
      failure = why;
      client.finishAfterFlush('linger');
      client.kick();
    };
    client.onError = onError;
    client.onClosed = () => {
      connecting?.cancel();
      connecting = null;
      ended();
    };

    resolveEndpoint(this.to, this.resolver).then(
      (targets) => {
        if (client.closed) return;
        connecting = connectAny(
          this.map,
          targets,
          this.connectTimeoutMs,
          (errno, end) => {
            connecting = null;
            if (end === null) return fail(describeError(errno));
            upstream = end;
            idle?.attach(end);
            end.onError = onError;
            end.onClosed = ended;
            pair(client, end);
            client.kick();
          },
          this.admitErrno,
        );
      },
      (err: unknown) => {
        if (!client.closed) fail(describeError(err));
      },
    );
  }
}

export const forwardCommand: Command = {
  name: 'forward',
  summary: 'TCP / Unix port forwarder with backpressure and half-close',
  synopsis: '--listen ADDR --to ADDR [options]',
  description:
    'Accepts connections on --listen and relays each to a new connection to --to, both ways.\n' +
    'Half-close is passed on (after buffered data), a slow side stops the other from being\n' +
    'read beyond 256 KiB of unsent data, and a client whose upstream cannot be reached is\n' +
    'closed. A host name in --to is resolved for each connection without blocking others.\n' +
    'With --idle-timeout, a connection that moves no byte either way for that long is closed.\n' +
    'ADDR is HOST:PORT, [V6]:PORT or unix:PATH.',
  options: {
    listen: { value: 'ADDR', required: true, help: 'where to listen' },
    to: { value: 'ADDR', required: true, help: 'where to connect for each client' },
    'connect-timeout': { value: 'SECONDS', help: 'give up an upstream connect after this long (default 10)' },
    'idle-timeout': IDLE_TIMEOUT_OPTION,
  },
  create: (opts, logger) =>
    new ForwardServer({
      logger,
      to: endpointOption(opts, 'to'),
      connectTimeout: parseSeconds('connect-timeout', opts['connect-timeout'], 10),
      idleTimeout: idleTimeoutOption(opts),
    }),
};
