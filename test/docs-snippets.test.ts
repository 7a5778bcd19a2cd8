/**
 * Every code block in README.md and docs/*.md runs, as written, against a
 * real client — so the docs cannot rot.
 *
 * The convention (README, "Building and testing"):
 * - A fenced block in `js` / `mjs` / `javascript` runs as an ES module, `cjs`
 *   as CommonJS, `ts` / `mts` / `typescript` as an ES module once TypeScript
 *   has stripped its types. Each block is its own program, run with `node`
 *   in a fresh folder where `import 'asyncore-native'` resolves to this
 *   checkout's built package and `./dist/`, `./examples/` are the checkout's
 *   own (so "from a checkout" imports work too); the folder's package.json
 *   says `"type": "module"`. Where the machine allows it, the program runs in
 *   a network namespace of its own, so the fixed ports of the docs collide
 *   with nothing else on the machine.
 * - A program passes when it exits 0 by itself within 20 s, or when it
 *   listens: then every TCP port it listens on gets a client that sends
 *   `GET / HTTP/1.0\r\n\r\n` and must read it back (an echo, in any case) or
 *   an HTTP response, and after a SIGINT the program must be gone within 5 s
 *   (exit code 0, or killed by the SIGINT it does not handle — a blocking
 *   `loop()` or `serveForever()`). See test/helpers/run-snippet.mjs.
 * - A block is not run when the line before its fence is
 *   `<!-- not-run: REASON -->` (a shell session, a fragment; the reason is
 *   required), or is saved as a file for the document's runnable blocks when
 *   that line is `<!-- file: NAME -->` (a handler module a later block
 *   imports). A block in any other language (sh, text, none) must carry one
 *   of these markers: an unmarked one fails here.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { trackFds } from './helpers/fds.js';

trackFds();

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const driver = path.join(root, 'test/helpers/run-snippet.mjs');
const ts = createRequire(import.meta.url)('typescript') as typeof import('typescript');

interface Block {
  doc: string;
  line: number;
  lang: string;
  code: string;
  marker: { kind: 'not-run' | 'file'; value: string } | null;
}

const RUNNABLE: Record<string, 'mjs' | 'cjs' | 'ts'> = {
  js: 'mjs', mjs: 'mjs', javascript: 'mjs', cjs: 'cjs', ts: 'ts', mts: 'ts', typescript: 'ts',
};

/** The fenced blocks of a Markdown file, with the marker on the line before each. */
function blocks(doc: string): Block[] {
  const lines = readFileSync(path.join(root, doc), 'utf8').split('\n');
  const out: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```([\w-]*)/.exec(lines[i]!);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i]!); i++) body.push(lines[i]!);
    let prev = start - 1;
    while (prev >= 0 && lines[prev]!.trim() === '') prev--;
    const m = prev >= 0 ? /^<!--\s*(not-run|file):\s*(.*?)\s*-->$/.exec(lines[prev]!.trim()) : null;
    out.push({
      doc,
      line: start + 1,
      lang: open[1]!.toLowerCase(),
      code: body.join('\n') + '\n',
      marker: m ? { kind: m[1] as 'not-run' | 'file', value: m[2]! } : null,
    });
  }
  return out;
}

const docs = ['README.md', ...readdirSync(path.join(root, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];
const all = docs.flatMap(blocks);
const work = mkdtempSync(path.join(tmpdir(), 'an-docs-'));

afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The folder a document's blocks run in: the package by name, the checkout's dist/ and examples/, its file blocks. */
function folderFor(doc: string): string {
  const dir = path.join(work, doc.replace(/[/.]/g, '_'));
  try {
    mkdirSync(dir);
  } catch {
    return dir;
  }
  mkdirSync(path.join(dir, 'node_modules'));
  symlinkSync(root, path.join(dir, 'node_modules', 'asyncore-native'));
  symlinkSync(path.join(root, 'dist'), path.join(dir, 'dist'));
  symlinkSync(path.join(root, 'examples'), path.join(dir, 'examples'));
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'doc-snippets', private: true, type: 'module' }));
  for (const b of all) if (b.doc === doc && b.marker?.kind === 'file') writeFileSync(path.join(dir, b.marker.value), b.code);
  return dir;
}

let netns: boolean | undefined;
/** True when a private network namespace with a loopback can be made (unshare -rn, then ip link set lo up). */
function haveNetns(): boolean {
  netns ??= spawnSync('unshare', ['-rn', 'sh', '-c', 'ip link set lo up'], { stdio: 'ignore', timeout: 10_000 }).status === 0;
  return netns;
}

interface Verdict {
  ok: boolean;
  why: string;
  code?: number | null;
  signal?: string | null;
  stdout: string;
  stderr: string;
  ms: number;
  probes?: Array<{ host: string; port: number; ok: boolean; why: string }>;
}

function runBlock(b: Block): Promise<Verdict> {
  const dir = folderFor(b.doc);
  const kind = RUNNABLE[b.lang]!;
  const file = `block-line-${b.line}.${kind === 'cjs' ? 'cjs' : 'mjs'}`;
  const code = kind === 'ts'
    ? ts.transpileModule(b.code, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 }, fileName: 'block.ts' }).outputText
    : b.code;
  writeFileSync(path.join(dir, file), code);
  // The wrappers (unshare, sh, ip) run without an ASan runtime preloaded; the driver gives it back to the program.
  const env: NodeJS.ProcessEnv = { ...process.env, SNIPPET_LD_PRELOAD: process.env.LD_PRELOAD ?? '' };
  delete env.LD_PRELOAD;
  if (!env.SNIPPET_LD_PRELOAD) delete env.SNIPPET_LD_PRELOAD;
  const [cmd, args] = haveNetns()
    ? ['unshare', ['-rn', 'sh', '-c', 'ip link set lo up && exec "$0" "$@"', process.execPath, driver, dir, file]]
    : [process.execPath, [driver, dir, file]];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args as string[], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const t = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', reject);
    child.once('close', () => {
      clearTimeout(t);
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()!) as Verdict);
      } catch {
        reject(new Error(`the snippet driver failed: ${out}\n${err}`));
      }
    });
  });
}

describe('the code blocks of README.md and docs/*.md', () => {
  it('are all either runnable or marked (not-run: REASON / file: NAME)', () => {
    const unmarked = all.filter((b) => !b.marker && !RUNNABLE[b.lang]).map((b) => `${b.doc}:${b.line} (\`\`\`${b.lang})`);
    expect(unmarked, 'mark each with <!-- not-run: REASON --> or make it a js / ts block').toEqual([]);
    const noReason = all.filter((b) => b.marker && !b.marker.value).map((b) => `${b.doc}:${b.line}`);
    expect(noReason).toEqual([]);
    // Every document has something that runs or a stated reason for each block.
    expect(all.filter((b) => !b.marker).length).toBeGreaterThan(5);
  });

  const runnable = all.filter((b) => !b.marker && RUNNABLE[b.lang]);
  it.each(runnable.map((b) => [`${b.doc}:${b.line}`, b] as const))('%s runs', async (_name, b) => {
    const v = await runBlock(b);
    expect(v.ok, `${b.doc}:${b.line}: ${v.why}\n--- stdout\n${v.stdout}\n--- stderr\n${v.stderr}`).toBe(true);
  }, 90_000);
});
