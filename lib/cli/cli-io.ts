/** A stream the CLI writes to: process.stdout / process.stderr, or a test's capture. */
export interface CliOutput {
  write(text: string): unknown;
  /** True when it is a terminal (the progress bar is drawn only there unless asked for). */
  readonly isTTY?: boolean;
}

/** What the CLI reads and writes besides Redis, so a test runs it in-process. */
export interface CliIo {
  /** The report, and nothing else. */
  readonly stdout: CliOutput;
  /** Errors, notes and the progress bar. */
  readonly stderr: CliOutput;
  readonly env: Readonly<Record<string, string | undefined>>;
}

/** The process's own streams and environment. */
export function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env };
}

/** The exit codes: 0 all is well, 1 red flags found, 2 usage or connection error. */
export const EXIT_OK = 0;
export const EXIT_RED_FLAGS = 1;
export const EXIT_ERROR = 2;

/** A mistake in the command line: reported with the usage, exit code 2. */
export class CliUsageError extends Error {}

/** Redis could not be reached or refused the audit: reported as one line, exit code 2. */
export class CliRedisError extends Error {}
