#!/usr/bin/env node
/**
 * `asyncore-native <command>`: real programs over the library.
 *
 *   asyncore-native echo    --listen HOST:PORT
 *   asyncore-native forward --listen HOST:PORT --to HOST:PORT
 *   asyncore-native socks5  --listen HOST:PORT [--auth USER:PASS]
 *
 * Each runs its asyncore dispatchers with loopAsync inside Node's event
 * loop and stops cleanly (exit 0) on SIGINT / SIGTERM. See docs/cli.md.
 */
import { runCommand, type Command } from './command.js';
import { echoCommand } from './echo.js';
import { forwardCommand } from './forward.js';
import { socks5Command } from './socks5.js';

export const commands: readonly Command[] = [echoCommand, forwardCommand, socks5Command];

/** The top-level help. */
export function mainHelp(): string {
  const width = Math.max(...commands.map((c) => c.name.length)) + 2;
  const rows = commands.map((c) => `  ${c.name.padEnd(width)}${c.summary}`).join('\n');
  return (
    'usage: asyncore-native <command> [options]\n\n' +
    "Servers built on asyncore-native's asyncore layer (select / poll / epoll on raw descriptors).\n\n" +
    `commands:\n${rows}\n\n` +
    "Run 'asyncore-native <command> --help' for a command's options.\n"
  );
}

/** Runs the CLI with `argv` (without node and the script); resolves to the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(mainHelp());
    return name === undefined ? 2 : 0;
  }
  const cmd = commands.find((c) => c.name === name);
  if (cmd === undefined) {
    process.stderr.write(`asyncore-native: unknown command ${JSON.stringify(name)} (expected ${commands.map((c) => c.name).join(', ')})\nTry 'asyncore-native --help'.\n`);
    return 2;
  }
  return runCommand(cmd, rest);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`asyncore-native: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
