/**
 * Connection logging for the CLI: with `--verbose`, one line to stderr when a
 * connection opens and one when it closes, each tagged with a connection
 * number. Errors that end the program are always printed.
 */

/** Where log lines go: stderr by default, a collector in tests. */
export type LogSink = (line: string) => void;

const stderrSink: LogSink = (line) => {
  process.stderr.write(line + '\n');
};

export class Logger {
  private seq = 0;

  /** `verbose`: log connections; `sink`: where lines go (default stderr). */
  constructor(
    readonly verbose = false,
    private readonly sink: LogSink = stderrSink,
    readonly prefix = 'asyncore-native',
  ) {}

  /** The next connection number (1, 2, …). */
  nextId(): number {
    return ++this.seq;
  }

  /** A connection-level line, printed only with --verbose. */
  conn(text: string): void {
    if (this.verbose) this.sink(`${this.prefix}: ${text}`);
  }

  /** A line always printed (startup problems, unexpected errors). */
  error(text: string): void {
    this.sink(`${this.prefix}: ${text}`);
  }
}

/** `1234 B`, `56.7 KiB`, `8.9 MiB` for byte counts in close lines. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}
