/**
 * Running a CLI command: parse its options, start its server, print the bound
 * address, serve until SIGINT / SIGTERM, then close every connection and exit 0.
 *
 * Exit codes: 0 after a clean stop or `--help`; 1 when the server cannot
 * start (address in use, permission denied, a host that does not resolve) or
 * the loop fails; 2 for a wrong command line.
 */
import { UsageError, COMMON_OPTIONS, parseArgs, parseBackend, parseSeconds, usage, type OptionSpec, type OptionSpecs, type ParsedOptions } from './args.js';
import { EndpointError, formatEndpoint, parseEndpoint, type Endpoint } from './address.js';
import { Logger } from './log.js';
import type { Server } from './server.js';

export interface Command {
  name: string;
  /** One line for the top-level help. */
  summary: string;
  /** What follows the command name in the usage line. */
  synopsis: string;
  description: string;
  /** The command's own options (the common ones are added). */
  options: OptionSpecs;
  /** Builds the server from parsed options (UsageError / EndpointError for bad values). */
  create(opts: ParsedOptions, logger: Logger): Server;
}

/** The command's full option table. */
export function optionsOf(cmd: Command): OptionSpecs {
  return { ...cmd.options, ...COMMON_OPTIONS };
}

/** The command's `--help` text. */
export function helpOf(cmd: Command): string {
  return usage(cmd.name, cmd.synopsis, cmd.description, optionsOf(cmd));
}

/** `--listen` as an endpoint (UsageError with the option's name on a bad one). */
export function endpointOption(opts: ParsedOptions, name: string, allowUnix = true): Endpoint {
  try {
    return parseEndpoint(String(opts[name]), allowUnix);
  } catch (err) {
    if (err instanceof EndpointError) throw new UsageError(`--${name}: ${err.message}`);
    throw err;
  }
}

/** `--idle-timeout SECONDS`, for the commands that relay connections (echo, forward, socks5). */
export const IDLE_TIMEOUT_OPTION: OptionSpec = {
  value: 'SECONDS',
  help: 'close a connection with no traffic in either direction for this long (default: never)',
};

/** The parsed `--idle-timeout` (undefined when not given; UsageError for a bad value). */
export function idleTimeoutOption(opts: ParsedOptions): number | undefined {
  const v = opts['idle-timeout'];
  return v === undefined ? undefined : parseSeconds('idle-timeout', v, 0);
}

/** Runs `cmd` with `argv` (the words after its name); resolves to the exit code. */
export async function runCommand(cmd: Command, argv: readonly string[]): Promise<number> {
  const prog = `asyncore-native ${cmd.name}`;
  let server: Server;
  let backend: ReturnType<typeof parseBackend>;
  let listen: Endpoint;
  try {
    const opts = parseArgs(argv, optionsOf(cmd));
    if (opts.help) {
      process.stdout.write(helpOf(cmd));
      return 0;
    }
    backend = parseBackend(opts.backend);
    listen = endpointOption(opts, 'listen');
    server = cmd.create(opts, new Logger(opts.verbose === true, undefined, cmd.name));
  } catch (err) {
    if (err instanceof UsageError || err instanceof EndpointError) {
      process.stderr.write(`${prog}: ${err.message}\nTry '${prog} --help'.\n`);
      return 2;
    }
    throw err;
  }

  try {
    const bound = await server.listen(listen);
    process.stdout.write(`listening on ${bound}\n`);
  } catch (err) {
    server.close();
    process.stderr.write(`${prog}: cannot listen on ${formatEndpoint(listen)}: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }

  let signalled = '';
  const stop = (sig: NodeJS.Signals) => {
    if (signalled === '') {
      signalled = sig;
      server.logger.conn(`${sig}: closing every connection`);
    }
    server.close();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  try {
    await server.run({ backend });
  } catch (err) {
    server.close();
    process.stderr.write(`${prog}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 1;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
  server.logger.conn('stopped');
  return 0;
}
