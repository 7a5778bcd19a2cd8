// Preload for a benchmark server: counts the loop's passes (its calls to the
// addon's wait functions) and reports the count on stdout every 100 ms, so
// bench/idle.mjs can give messages per pass and server CPU per pass.
//
//   PASS_COUNTER_NATIVE=/abs/path/dist/native.js \
//     node --import ./bench/lib/pass-counter.mjs bench/servers/asyncore_echo.mjs --backend poll
//
// Each line: `PASSES <count> <epoch ms>`. The count covers native.poll,
// native.select and native.epollWait (a backend calls one of them once per
// pass; a pass with nothing registered calls none). The report comes from a
// worker thread writing straight to fd 1, because `loop()` holds the main
// thread in the wait and never returns to Node's event loop. Cost to the
// server: one wrapper call per pass and ten wake-ups per second of the
// worker.
import { Worker } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';

const nativePath = process.env.PASS_COUNTER_NATIVE;
if (!nativePath) throw new Error('pass-counter: set PASS_COUNTER_NATIVE to the dist/native.js the server loads');
const { native } = await import(pathToFileURL(nativePath).href);
const count = new Int32Array(new SharedArrayBuffer(4));
for (const name of ['poll', 'select', 'epollWait']) {
  const fn = native[name];
  if (typeof fn !== 'function') continue;
  native[name] = function counted(...args) {
    count[0]++;
    return fn.apply(this, args);
  };
}
const worker = new Worker(
  `const { workerData } = require('node:worker_threads');
   const { writeSync } = require('node:fs');
   setInterval(() => writeSync(1, 'PASSES ' + workerData[0] + ' ' + Date.now() + '\\n'), 100);`,
  { eval: true, workerData: count },
);
worker.unref();
