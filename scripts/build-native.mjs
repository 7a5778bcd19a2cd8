// The addon's install and build steps.
//
//   node scripts/build-native.mjs               npm's `install` step (see below)
//   node scripts/build-native.mjs --from-source build into build/ (npm run build:native)
//   node scripts/build-native.mjs --prebuild    build into prebuilds/<platform>-<arch>/ (`prepack`)
//
// The install step, in order:
// - in a development checkout (the package is not inside a node_modules
//   folder), or with `npm install --build-from-source`: build from source;
// - else, when the package carries a prebuilt binary for this platform, arch
//   and libc (node-gyp-build's rules) and it loads in a fresh `node`: use it,
//   build nothing;
// - else build from source. Without make, a C++ compiler or Python, say in
//   one paragraph what to install instead of node-gyp's stack trace.
//
// Source builds run node-gyp against the running Node's own headers when
// they are on the machine (`--nodedir`, never a download). node-gyp is this
// checkout's devDependency or, in a user's install, the one npm brings
// (npm_config_node_gyp). ASYNCORE_NATIVE_SANITIZE=1 builds with ASan + UBSan
// into build-asan/ instead of build/; ASYNCORE_NATIVE_PORTABLE=1 builds the
// portable paths (AN_PORTABLE: the fallbacks macOS and the BSDs compile;
// epoll.cc stays, as a build choice, not a feature test) into build-portable/ (npm run build:portable). The prebuilt, sanitizer and
// portable builds are made in a scratch copy of the sources, so build/ is
// never touched.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { accessSync, constants, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, symlinkSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const NAME = 'asyncore_native.node';
/** The prebuilt platforms the published package carries (README, "Install"). */
const PREBUILT = 'linux-x64 with glibc >= 2.28';

function onPath(cmd) {
  if (cmd.includes('/')) return existsSync(cmd) ? cmd : null;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const p = path.join(dir, cmd);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // Not here.
    }
  }
  return null;
}

/** libc of this Linux machine as node-gyp-build names it; null elsewhere. */
function libc() {
  if (process.platform !== 'linux') return null;
  if (process.env.LIBC) return process.env.LIBC;
  return process.report?.getReport().header.glibcVersionRuntime ? 'glibc' : 'musl';
}

function target() {
  const c = libc();
  return `${process.platform}-${process.arch}${c ? `, ${c}` : ''}`;
}

/** What a source build needs that is missing from PATH (node-gyp's own lookups: python3/python, make, the compiler make calls). */
function missingToolchain() {
  const missing = [];
  const python = process.env.npm_config_python || process.env.PYTHON;
  if (python ? !onPath(python) : !onPath('python3') && !onPath('python')) missing.push('python3');
  const make = /bsd$/.test(process.platform) ? 'gmake' : 'make';
  if (!onPath(make)) missing.push(make);
  // node-gyp's Makefile runs $(CXX), which make defaults to g++ on Linux.
  const cxx = process.env.CXX?.split(' ')[0];
  const compilers = cxx ? [cxx] : process.platform === 'linux' ? ['g++'] : ['c++', 'clang++', 'g++'];
  if (!compilers.some(onPath)) missing.push(cxx ? `${cxx} (from CXX)` : process.platform === 'linux' ? 'g++' : 'a C++ compiler (c++)');
  return missing;
}

function toolchainMessage(missing, why) {
  return (
    `asyncore-native: cannot install the native addon. ${why}, so it must be built from source, and that needs ` +
    `${missing.join(', ')}, missing from PATH. Install the build tools and run the install again: on Debian or ` +
    'Ubuntu `apt-get install build-essential python3` (build-essential brings make and g++), on Fedora or RHEL ' +
    '`dnf install make gcc-c++ python3`, on Alpine `apk add build-base python3`, on macOS `xcode-select --install`. ' +
    `The published package carries a prebuilt binary for ${PREBUILT}, which needs no tools.\n`
  );
}

/** How to run node-gyp: this checkout's, else npm's own (npm_config_node_gyp), else one on PATH. */
function nodeGyp() {
  try {
    return [process.execPath, require.resolve('node-gyp/bin/node-gyp.js')];
  } catch {
    // Not installed here: a user's install, where npm brings its own.
  }
  const fromNpm = process.env.npm_config_node_gyp;
  if (fromNpm && existsSync(fromNpm)) return fromNpm.endsWith('.js') ? [process.execPath, fromNpm] : [fromNpm];
  const onpath = onPath('node-gyp');
  return onpath ? [onpath] : null;
}

/** `node-gyp rebuild` in `dir`; exits the process on failure. */
function gypRebuild(dir, why, env = process.env) {
  const missing = missingToolchain();
  if (missing.length > 0) {
    process.stderr.write(toolchainMessage(missing, why));
    process.exit(1);
  }
  const gyp = nodeGyp();
  if (!gyp) {
    process.stderr.write('asyncore-native: building the addon needs node-gyp, which npm brings to the scripts it runs; run the install through npm, or `npm install -g node-gyp`.\n');
    process.exit(1);
  }
  const nodedir = path.resolve(process.execPath, '..', '..');
  const args = [...gyp.slice(1), 'rebuild'];
  if (existsSync(path.join(nodedir, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${nodedir}`);
  const r = spawnSync(gyp[0], args, { cwd: dir, stdio: 'inherit', env });
  if (r.status !== 0) {
    process.stderr.write(`asyncore-native: node-gyp failed (${r.error?.message ?? `exit ${r.status ?? r.signal}`}); its output is above.\n`);
    process.exit(r.status || 1);
  }
}

/**
 * Builds in a scratch copy of the sources (binding.gyp, native/; node_modules
 * linked for node-addon-api) and returns the built addon's path there.
 */
function scratchBuild(why, env) {
  const dir = mkdtempSync(path.join(tmpdir(), 'asyncore-native-build-'));
  cpSync(path.join(root, 'binding.gyp'), path.join(dir, 'binding.gyp'));
  cpSync(path.join(root, 'native'), path.join(dir, 'native'), { recursive: true });
  symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  gypRebuild(dir, why, env);
  return path.join(dir, 'build', 'Release', NAME);
}

function place(built, dest) {
  mkdirSync(path.dirname(dest), { recursive: true });
  copyFileSync(built, dest);
}

/**
 * The prebuilt binary for `npm pack` / `npm publish`: Node-API 8, so one
 * file serves every Node >= 20; named by node-gyp-build's tags
 * (prebuilds/linux-x64/asyncore-native.napi.glibc.node), symbols stripped.
 */
function prebuild() {
  const built = scratchBuild('The prebuilt binary is being made', process.env);
  const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  rmSync(path.join(root, 'prebuilds'), { recursive: true, force: true });
  const dest = path.join(dir, `asyncore-native.napi${libc() ? `.${libc()}` : ''}.node`);
  place(built, dest);
  const strip = onPath('strip');
  if (strip) spawnSync(strip, process.platform === 'darwin' ? ['-x', dest] : ['--strip-unneeded', dest], { stdio: 'inherit' });
  console.log(`prebuilt ${path.relative(root, dest)}`);
}

function fromSource(why) {
  if (process.env.ASYNCORE_NATIVE_SANITIZE === '1') {
    place(scratchBuild('A sanitizer build was asked for', process.env), path.join(root, 'build-asan', 'Release', NAME));
    return;
  }
  if (process.env.ASYNCORE_NATIVE_PORTABLE === '1') {
    place(scratchBuild('A portable build was asked for', process.env), path.join(root, 'build-portable', 'Release', NAME));
    return;
  }
  gypRebuild(root, why);
}

/** A prebuilt binary node-gyp-build would pick for this machine, or null. */
function fittingPrebuild() {
  const dir = path.join(root, 'prebuilds');
  if (!existsSync(dir) || readdirSync(dir).length === 0) return null;
  try {
    const found = require('node-gyp-build').resolve(root);
    return found.startsWith(dir + path.sep) ? found : null;
  } catch {
    return null;
  }
}

/** Null when the binary loads in a fresh node, else the loader's first line (a libc too old, a wrong arch). */
function loadError(file) {
  const r = spawnSync(process.execPath, ['-e', 'require(process.argv[1])', file], { encoding: 'utf8' });
  return r.status === 0 ? null : (r.stderr.split('\n').find((l) => /Error/.test(l)) ?? `exit ${r.status}`).trim();
}

function install() {
  const inNodeModules = realpathSync(root).split(path.sep).includes('node_modules');
  if (!inNodeModules) return fromSource('This is a development checkout');
  if (process.env.npm_config_build_from_source === 'true') return fromSource('--build-from-source was given');
  const prebuilt = fittingPrebuild();
  if (prebuilt) {
    const err = loadError(prebuilt);
    if (!err) return;
    return fromSource(`The prebuilt binary ${path.relative(root, prebuilt)} does not load here (${err})`);
  }
  return fromSource(`No prebuilt binary fits this machine (${target()})`);
}

const mode = process.argv[2];
if (mode === '--prebuild') prebuild();
else if (mode === '--from-source') fromSource('A source build was asked for');
else if (mode === undefined) install();
else {
  process.stderr.write(`usage: node scripts/build-native.mjs [--from-source | --prebuild]\n`);
  process.exit(2);
}
