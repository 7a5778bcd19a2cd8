// Node `net` echo server: the baseline that asyncore-native should at least match.
//   node bench/peers/node_net_echo.mjs [--host 127.0.0.1] [--port 0]
// Prints "LISTENING <port>" once listening; exits 0 on SIGTERM/SIGINT.
import net from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
  },
});

const sockets = new Set();
// noDelay matches the other peers (and the load generator): a split echo must
// not wait for a delayed ACK.
const server = net.createServer({ noDelay: true }, (sock) => {
  sockets.add(sock);
  // Plain write-back is the idiomatic echo; in ping-pong there is never more
  // than one message in flight, so no back-pressure handling is needed.
  sock.on('data', (chunk) => sock.write(chunk));
  sock.on('end', () => sock.end());
  // Resets at the end of a run are normal; without a listener they would crash us.
  sock.on('error', () => {});
  sock.on('close', () => sockets.delete(sock));
});

server.listen({ host: values.host, port: Number(values.port), backlog: 4096 }, () => {
  process.stdout.write(`LISTENING ${server.address().port}\n`);
});

function shutdown() {
  server.close();
  for (const s of sockets) s.destroy();
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
