/**
 * A small command-line parser shared by the commands: `--name value`,
 * `--name=value`, boolean flags, `-h` / `--help`, and a clear UsageError for
 * anything unknown, missing or repeated.
 */
import * as C from '../constants.js';

/** A wrong command line: the message is for a person; the CLI exits 2. */
export class UsageError extends Error {
  override name = 'UsageError';
  readonly code = 'ERR_USAGE';
}

export interface OptionSpec {
  /** Takes a value (`--listen HOST:PORT`) rather than being a flag (`--verbose`). */
  value?: string;
  /** Must be given. */
  required?: boolean;
  /** One line for `--help`. */
  help: string;
  /** A one-letter alias, e.g. 'v'. */
  short?: string;
}

export type OptionSpecs = Record<string, OptionSpec>;
export type ParsedOptions = Record<string, string | boolean | undefined>;

/** Options every command takes. */
export const COMMON_OPTIONS: OptionSpecs = {
  backend: { value: 'select|poll|epoll', help: `poller for the asyncore loop (default ${C.HAVE_EPOLL ? 'epoll' : 'poll'})` },
  verbose: { short: 'v', help: 'log one line per connection opened / closed to stderr' },
  help: { short: 'h', help: 'show this help and exit' },
};

/**
 * Parses `argv` (the words after the command name) against `specs`.
 * Returns option name → value (string), true (flag) or undefined.
 * Throws UsageError for an unknown option, a missing or repeated one,
 * a missing value or a stray positional word. `--help` wins over every check.
 */
export function parseArgs(argv: readonly string[], specs: OptionSpecs): ParsedOptions {
  const out: ParsedOptions = {};
  const byShort = new Map<string, string>();
  for (const [name, s] of Object.entries(specs)) if (s.short) byShort.set(s.short, name);
  if (argv.includes('--help') || argv.includes('-h')) return { help: true };
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    let name: string;
    let inline: string | undefined;
    if (word.startsWith('--')) {
      const eq = word.indexOf('=');
      name = eq < 0 ? word.slice(2) : word.slice(2, eq);
      inline = eq < 0 ? undefined : word.slice(eq + 1);
    } else if (/^-[A-Za-z]$/.test(word) && byShort.has(word[1]!)) {
      name = byShort.get(word[1]!)!;
    } else {
      throw new UsageError(`unexpected argument ${JSON.stringify(word)}`);
    }
    const spec = specs[name];
    if (spec === undefined) throw new UsageError(`unknown option --${name}`);
    if (out[name] !== undefined) throw new UsageError(`--${name} given twice`);
    if (spec.value === undefined) {
      if (inline !== undefined) throw new UsageError(`--${name} takes no value`);
      out[name] = true;
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined || (inline === undefined && value.startsWith('--'))) throw new UsageError(`--${name} needs a value (${spec.value})`);
    out[name] = value;
  }
  for (const [name, s] of Object.entries(specs)) {
    if (s.required && out[name] === undefined) throw new UsageError(`--${name} ${s.value ?? ''} is required`.trimEnd());
  }
  return out;
}

/** The backend named by `--backend` (default epoll on Linux, else poll). */
export function parseBackend(value: string | boolean | undefined): 'select' | 'poll' | 'epoll' {
  if (value === undefined) return C.HAVE_EPOLL ? 'epoll' : 'poll';
  if (value === 'select' || value === 'poll') return value;
  if (value === 'epoll') {
    if (!C.HAVE_EPOLL) throw new UsageError('--backend epoll is only available on Linux');
    return value;
  }
  throw new UsageError(`--backend must be select, poll or epoll, not ${JSON.stringify(value)}`);
}

/** A positive number of seconds from an option (e.g. --connect-timeout). */
export function parseSeconds(name: string, value: string | boolean | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = typeof value === 'string' && /^\d+(\.\d+)?$/.test(value) ? Number(value) : NaN;
  if (!(n > 0) || n > 86400) throw new UsageError(`--${name} must be a number of seconds (0 < s <= 86400), not ${JSON.stringify(value)}`);
  return n;
}

/** The `--help` text of a command: usage line, description, and one line per option. */
export function usage(command: string, synopsis: string, description: string, specs: OptionSpecs): string {
  const rows = Object.entries(specs).map(([name, s]) => {
    const left = `${s.short ? `-${s.short}, ` : '    '}--${name}${s.value ? ` ${s.value}` : ''}`;
    return [left, s.help + (s.required ? ' (required)' : '')] as const;
  });
  const width = Math.max(...rows.map(([l]) => l.length)) + 2;
  const lines = rows.map(([l, h]) => `  ${l.padEnd(width)}${h}`);
  return `usage: asyncore-native ${command} ${synopsis}\n\n${description}\n\noptions:\n${lines.join('\n')}\n`;
}
