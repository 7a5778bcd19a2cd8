// Builds the addon with node-gyp against the headers of the running Node
// (never a download): `node-gyp rebuild --nodedir=<prefix>`.
// ASYNCORE_NATIVE_SANITIZE=1 builds with ASan + UBSan into build-asan/.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const nodedir = path.resolve(process.execPath, '..', '..');
const gyp = require.resolve('node-gyp/bin/node-gyp.js');
const sanitize = process.env.ASYNCORE_NATIVE_SANITIZE === '1';
const args = [gyp, 'rebuild', `--nodedir=${nodedir}`];
if (!existsSync(path.join(nodedir, 'include', 'node', 'node_api.h'))) args.pop();
// The sanitizer build must not clobber the regular one in build/: set it aside.
const keep = path.join(root, 'build.keep');
if (sanitize && existsSync(path.join(root, 'build'))) {
  rmSync(keep, { recursive: true, force: true });
  renameSync(path.join(root, 'build'), keep);
}
const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
if (sanitize) {
  rmSync(path.join(root, 'build-asan'), { recursive: true, force: true });
  if (existsSync(path.join(root, 'build'))) renameSync(path.join(root, 'build'), path.join(root, 'build-asan'));
  if (existsSync(keep)) renameSync(keep, path.join(root, 'build'));
}
if (r.status !== 0) process.exit(r.status ?? 1);
