#!/usr/bin/env node
// The `nestjs-redis-cache` executable (package.json `bin`): everything happens in run-cli.ts.
import { processIo } from './cli-io.js';
import { runCli } from './run-cli.js';

// Not a top-level await: the CommonJS build compiles this file too.
void runCli(process.argv.slice(2), processIo()).then((code) => {
  process.exitCode = code;
});
