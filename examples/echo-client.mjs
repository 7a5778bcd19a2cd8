#!/usr/bin/env node
// The seed's asyncore echo client, done right: it sends its whole message
// (keeping what a partial send left), reads until every byte has come back
// (the seed printed whatever one recv returned and wondered why replies were
// "often incomplete"), then closes. Several clients share one loop.
//
//   node examples/echo-client.mjs HOST PORT MESSAGE...
import { AF_INET, AF_INET6, DispatcherWithSend, SOCK_STREAM, loop } from 'asyncore-native';

export class EchoClient extends DispatcherWithSend {
  constructor(host, port, message, map) {
    super(null, map);
    this.expected = Buffer.from(message);
    this.received = [];
    this.length = 0;
    this.createSocket(host.includes(':') ? AF_INET6 : AF_INET, SOCK_STREAM);
    this.connect([host, port]);
    this.send(this.expected);
  }

  handleConnect() {}

  handleRead() {
    const data = this.recv(65536);
    this.received.push(data);
    this.length += data.length;
    if (this.length >= this.expected.length) this.close();
  }

  handleClose() {
    this.close();
  }

  /** A refused or reset connection is reported in one line, not a traceback. */
  handleError(err) {
    console.error(`${this.addr?.join(':')}: ${err.message}`);
    this.close();
  }

  /** The echoed bytes, and whether they match what was sent. */
  get reply() {
    return Buffer.concat(this.received);
  }
  get ok() {
    return this.reply.equals(this.expected);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [host = '127.0.0.1', port = '9001', ...messages] = process.argv.slice(2);
  const clients = (messages.length ? messages : ['abcdefg', 'hijklmn']).map((m) => new EchoClient(host, Number(port), m));
  loop({ backend: 'epoll', timeout: 5 });
  let failed = 0;
  for (const c of clients) {
    console.log(`${c.ok ? 'ok' : 'MISMATCH'} ${JSON.stringify(c.reply.toString())}`);
    if (!c.ok) failed++;
  }
  process.exit(failed ? 1 : 0);
}
