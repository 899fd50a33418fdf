import { runAudit } from './audit-command.js';
import { CliRedisError, CliUsageError, EXIT_ERROR, EXIT_OK, type CliIo } from './cli-io.js';
import { describe } from './redis-connection.js';
import { AUDIT_USAGE, MAIN_USAGE } from './usage.js';

const NAME = 'nestjs-redis-cache';

/**
 * The `nestjs-redis-cache` command: `argv` without node and the script, the streams to use, and the
 * exit code as result. It never throws and never prints a stack: a mistake in the command line gets
 * the usage, an unreachable Redis one line on stderr, both exit code 2.
 *
 * @example
 * process.exitCode = await runCli(['audit', '--url', 'redis://127.0.0.1:6379', '--json'], processIo());
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === undefined) {
      io.stderr.write(MAIN_USAGE);
      return EXIT_ERROR;
    }
    if (command === '--help' || command === '-h' || command === 'help') {
      io.stdout.write(MAIN_USAGE);
      return EXIT_OK;
    }
    if (command === 'audit') return await runAudit(rest, io);
    throw new CliUsageError(`unknown command '${command}'`);
  } catch (err) {
    if (err instanceof CliUsageError) {
      io.stderr.write(`${NAME}: ${err.message}\n\n${command === 'audit' ? AUDIT_USAGE : MAIN_USAGE}`);
    } else if (err instanceof CliRedisError) {
      io.stderr.write(`${NAME}: ${err.message}\n`);
    } else {
      io.stderr.write(`${NAME}: unexpected error: ${describe(err)}\n`);
    }
    return EXIT_ERROR;
  }
}
