/**
 * The published package, as a user meets it: `npm pack` (its real prepack /
 * prepare / postpack scripts, in a copy of the checkout so the suite's own
 * dist/ is never rewritten under running tests), then `npm install` of the
 * tarball into fresh apps on a PATH that holds only node, npm and sh — no
 * compiler, no make, no python. Dependencies come from the npm cache or the
 * registry, as for any user.
 *
 * - The tarball carries the prebuilt Node-API binary and what a user needs,
 *   no build intermediates.
 * - Installed without a toolchain, the CLI and the library (from an ES
 *   module, a CommonJS module and a TypeScript app in CommonJS mode) run an
 *   echo round trip; `import` and `require` share one instance.
 * - A tarball whose prebuilt binary does not fit (another platform) fails to
 *   install with our one-paragraph message, not node-gyp's stack; installed
 *   with --ignore-scripts, loading it says what to do.
 */
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trackFds } from './helpers/fds.js';
import { connect, readAll } from './helpers/cli.js';

trackFds();

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const work = mkdtempSync(path.join(tmpdir(), 'an-package-'));
const npmCli = path.resolve(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js');
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');

/** The environment of a user's shell: none of this suite's npm / sanitizer / build-selection variables. */
function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_|^INIT_CWD$|^LD_PRELOAD$|^(ASAN|UBSAN|LSAN)_OPTIONS$|^ASYNCORE_NATIVE_|^VITEST|^NODE_OPTIONS$/.test(k)) continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

/** A folder whose PATH holds only node, npm and sh: what a machine without build tools offers. */
function barePath(): string {
  const bin = path.join(work, 'bare-bin');
  mkdirSync(bin, { recursive: true });
  symlinkSync(process.execPath, path.join(bin, 'node'));
  symlinkSync(npmCli, path.join(bin, 'npm'));
  symlinkSync('/bin/sh', path.join(bin, 'sh'));
  return bin;
}

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (killed after `ms`). */
function run(cmd: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; ms?: number }): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? userEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const ms = opts.ms ?? 60_000;
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')} did not finish within ${ms} ms; stderr: ${stderr}`));
    }, ms);
    child.once('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    child.once('close', (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

function ok(r: Run, what: string): Run {
  expect(r.code, `${what} failed:\n${r.stdout}\n${r.stderr}`).toBe(0);
  return r;
}

interface Packed {
  tarball: string;
  size: number;
  unpackedSize: number;
  files: string[];
}

/** `npm pack` of a copy of the checkout (the files the package is made from, node_modules linked). */
async function pack(): Promise<Packed> {
  const copy = path.join(work, 'checkout');
  mkdirSync(copy);
  for (const f of ['package.json', 'tsconfig.json', 'tsconfig.build.json', 'binding.gyp', 'LICENSE', 'README.md', 'src', 'native', 'scripts']) {
    cpSync(path.join(root, f), path.join(copy, f), { recursive: true });
  }
  symlinkSync(path.join(root, 'node_modules'), path.join(copy, 'node_modules'));
  const r = ok(await run(process.execPath, [npmCli, 'pack', '--json', '--pack-destination', work], { cwd: copy, ms: 180_000 }), 'npm pack');
  const [info] = JSON.parse(r.stdout.slice(r.stdout.indexOf('['))) as [{ filename: string; size: number; unpackedSize: number; files: { path: string }[] }];
  return { tarball: path.join(work, info.filename), size: info.size, unpackedSize: info.unpackedSize, files: info.files.map((f) => f.path) };
}

/** A fresh app folder with a package.json (CommonJS, npm's default). */
function app(name: string): string {
  const dir = path.join(work, name);
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, version: '1.0.0', private: true }));
  return dir;
}

function npmInstall(dir: string, bare: string, spec: string, ...flags: string[]): Promise<Run> {
  return run(path.join(bare, 'npm'), ['install', '--no-audit', '--no-fund', '--prefer-offline', ...flags, spec], {
    cwd: dir,
    env: userEnv({ PATH: bare }),
    ms: 120_000,
  });
}

// An asyncore echo round trip inside one process: a server and a client
// dispatcher on the default map, loop() until the client has its echo.
const roundTrip = (lib: string) => `
const { Dispatcher, DispatcherWithSend, loop, socketMap } = ${lib};
class Echo extends DispatcherWithSend {
  handleRead() { const d = this.recv(4096); if (d.length) this.send(d); }
}
class Server extends Dispatcher {
  constructor() { super(); this.createSocket(); this.bind(['127.0.0.1', 0]); this.listen(5); }
  handleAccepted(sock) { new Echo(sock); }
}
class Client extends DispatcherWithSend {
  constructor(port) { super(); this.got = ''; this.createSocket(); this.connect(['127.0.0.1', port]); this.send('ping'); }
  handleConnect() {}
  handleRead() { this.got += this.recv(4096).toString(); if (this.got === 'ping') this.close(); }
}
const server = new Server();
const client = new Client(server.socket.getsockname()[1]);
for (let i = 0; i < 100 && client.got !== 'ping'; i++) loop({ timeout: 0.1, count: 1, backend: 'poll' });
const got = client.got;
for (const d of [...socketMap.values()]) d.close();
if (got !== 'ping') { console.error('echo failed: ' + JSON.stringify(got)); process.exit(1); }
`;

let packed: Packed;
let bare: string;
let installed: string;

beforeAll(async () => {
  bare = barePath();
  packed = await pack();
  installed = app('app');
  ok(await npmInstall(installed, bare, packed.tarball), 'npm install of the tarball without a toolchain');
}, 300_000);

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

describe('the packed tarball', () => {
  it('carries the prebuilt binary, both entry points and their types, the sources for a fallback build, no build intermediates', () => {
    for (const f of [
      'prebuilds/linux-x64/asyncore-native.napi.glibc.node',
      'dist/index.js', 'dist/index.mjs', 'dist/index.d.ts', 'dist/index.d.mts', 'dist/package.json',
      'dist/socks5.js', 'dist/socks5.mjs', 'dist/socks5.d.ts', 'dist/socks5.d.mts',
      'dist/cli/main.js', 'dist/socketserver/runner.js',
      'binding.gyp', 'native/addon.cc', 'scripts/build-native.mjs', 'LICENSE', 'README.md', 'package.json',
    ]) {
      expect(packed.files, f).toContain(f);
    }
    const stray = packed.files.filter((f) => /^(build|build-cmake|build-asan|node_modules|test|bench)\/|obj\.target|\.o$|\.tgz$/.test(f));
    expect(stray).toEqual([]);
    // The README states the size (about 340 kB); a tarball several times that has picked up something it should not.
    expect(packed.size).toBeLessThan(1024 * 1024);
    expect(statSync(packed.tarball).size).toBe(packed.size);
  });

  it('installs without a compiler, make or python: no source build, the prebuilt binary is what loads', () => {
    const pkg = path.join(installed, 'node_modules', 'asyncore-native');
    expect(() => statSync(path.join(pkg, 'build'))).toThrow();
    const r = JSON.parse(readFileSync(path.join(pkg, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    // What a user's install downloads: the loader and the headers a fallback build needs; no build tool.
    expect(Object.keys(r.dependencies).sort()).toEqual(['node-addon-api', 'node-gyp-build']);
  });
});

describe('the installed package, without a toolchain', () => {
  it('runs the CLI: asyncore-native echo answers on loopback and stops on SIGINT with exit 0', async () => {
    const bin = path.join(installed, 'node_modules', '.bin', 'asyncore-native');
    const child = spawn(bin, ['echo', '--listen', '127.0.0.1:0'], { cwd: installed, env: userEnv({ PATH: bare }), stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let out = '';
      const address = await new Promise<string>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no "listening on" within 10 s: ${out}`)), 10_000);
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /listening on (\S+)\n/.exec(out);
          if (m) {
            clearTimeout(t);
            resolve(m[1]!);
          }
        });
        child.once('close', (code) => reject(new Error(`exited ${code} before listening`)));
      });
      const s = await connect(address);
      s.end('hello from an installed package');
      expect((await readAll(s)).data.toString()).toBe('hello from an installed package');
      s.destroy();
      const exit = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
      child.kill('SIGINT');
      expect(await exit).toBe(0);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });

  it('an ES module app: import runs an echo round trip; the socks5 subpath loads', async () => {
    writeFileSync(
      path.join(installed, 'esm.mjs'),
      `import * as lib from 'asyncore-native';\nimport { REP } from 'asyncore-native/socks5';\n${roundTrip('lib')}\nconsole.log('esm ok', REP.SUCCEEDED);\n`,
    );
    expect(ok(await run(process.execPath, ['esm.mjs'], { cwd: installed }), 'esm.mjs').stdout).toBe('esm ok 0\n');
  });

  it('a CommonJS app: require runs an echo round trip; the socks5 subpath loads', async () => {
    writeFileSync(
      path.join(installed, 'cjs.js'),
      `const { REP } = require('asyncore-native/socks5');\n${roundTrip("require('asyncore-native')")}\nconsole.log('cjs ok', REP.SUCCEEDED);\n`,
    );
    expect(ok(await run(process.execPath, ['cjs.js'], { cwd: installed }), 'cjs.js').stdout).toBe('cjs ok 0\n');
  });

  it('import and require share one instance: one socketMap, instanceof across both, the same names', async () => {
    writeFileSync(
      path.join(installed, 'both.mjs'),
      `import * as esm from 'asyncore-native';
import * as esmSocks from 'asyncore-native/socks5';
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const cjs = require('asyncore-native');
const d = new esm.Dispatcher();
const names = (m) => Object.keys(m).filter((k) => k !== '__esModule' && k !== 'default').sort().join();
console.log(JSON.stringify({
  socketMap: esm.socketMap === cjs.socketMap,
  instanceOf: d instanceof cjs.Dispatcher && new cjs.Dispatcher() instanceof esm.Dispatcher,
  names: names(esm) === names(cjs) && names(esmSocks) === names(require('asyncore-native/socks5')),
  count: Object.keys(esm).length,
}));
`,
    );
    const r = JSON.parse(ok(await run(process.execPath, ['both.mjs'], { cwd: installed }), 'both.mjs').stdout) as Record<string, unknown>;
    expect(r).toMatchObject({ socketMap: true, instanceOf: true, names: true });
    expect(r.count as number).toBeGreaterThan(100);
  });

  it('a TypeScript app in CommonJS mode (module node16) typechecks against the package types, with .mts beside it, and runs', async () => {
    const dir = path.join(installed, 'ts');
    mkdirSync(dir);
    writeFileSync(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'node16', moduleResolution: 'node16', target: 'ES2022', strict: true, outDir: 'out',
          types: ['node'], typeRoots: [path.join(root, 'node_modules', '@types')],
        },
        include: ['*.ts', '*.mts'],
      }),
    );
    writeFileSync(
      path.join(dir, 'app.ts'),
      `import { Dispatcher, OSError, Socket, loop, socketMap, type Address } from 'asyncore-native';
import { REP } from 'asyncore-native/socks5';
const addr: Address = ['127.0.0.1', 0];
const sock = new Socket();
sock.bind(addr);
const port: number = (sock.getsockname() as [string, number])[1];
const d = new Dispatcher(sock);
d.close();
loop({ timeout: 0, count: 1 });
const e: OSError | null = null;
console.log('ts ok', port > 0, socketMap.size, REP.SUCCEEDED, e);
`,
    );
    // The ES module side of the types (dist/index.d.mts), checked in the same program.
    writeFileSync(path.join(dir, 'esm-side.mts'), `import { Epoll, select } from 'asyncore-native';\nexport const kinds: string = typeof select + typeof Epoll;\n`);
    // One compiler run: it exits non-zero on any type error, as `tsc --noEmit` would, and emits the CommonJS program.
    ok(await run(process.execPath, [tsc, '-p', '.'], { cwd: dir }), 'tsc');
    expect(readFileSync(path.join(dir, 'out', 'app.js'), 'utf8')).toContain('require("asyncore-native")');
    expect(ok(await run(process.execPath, ['out/app.js'], { cwd: dir }), 'out/app.js').stdout).toBe('ts ok true 0 0 null\n');
  });
});

describe('a tarball whose prebuilt binary does not fit this machine', () => {
  let foreign: string;

  beforeAll(async () => {
    // The same package with its prebuilt binary moved to another platform's folder.
    const x = path.join(work, 'foreign');
    mkdirSync(x);
    ok(await run('tar', ['xzf', packed.tarball, '-C', x], { cwd: work }), 'tar x');
    renameSync(path.join(x, 'package', 'prebuilds', 'linux-x64'), path.join(x, 'package', 'prebuilds', 'sunos-sparc'));
    foreign = path.join(work, 'foreign.tgz');
    ok(await run('tar', ['czf', foreign, '-C', x, 'package'], { cwd: work }), 'tar c');
  }, 60_000);

  it('without a toolchain, npm install fails with our one-paragraph message naming what to install', async () => {
    const r = await npmInstall(app('no-toolchain'), bare, foreign);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('asyncore-native: cannot install the native addon. No prebuilt binary fits this machine (linux-x64, glibc)');
    expect(r.stderr).toMatch(/needs python3, make, g\+\+, missing from PATH/);
    expect(r.stderr).toContain('apt-get install build-essential python3');
    expect(r.stderr).not.toMatch(/gyp ERR!|stack Error/);
  });

  it('installed with --ignore-scripts, loading the library says what to do', async () => {
    const dir = app('ignore-scripts');
    ok(await npmInstall(dir, bare, foreign, '--ignore-scripts'), 'npm install --ignore-scripts');
    const r = await run(process.execPath, ['-e', "require('asyncore-native')"], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('asyncore-native: no native addon for linux-x64');
    expect(r.stderr).toContain('npm rebuild asyncore-native');
  });
});
