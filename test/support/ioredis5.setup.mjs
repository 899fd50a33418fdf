// A `setupFiles` entry of the `integration-ioredis5` jest project. In the test file itself, jest's
// moduleNameMapper turns `ioredis` into `ioredis5` (ioredis 5, installed under that name). Worker
// processes a spec spawns run on Node's own loader instead: NODE_OPTIONS gives them a resolve hook
// doing the same, so that they too run the module on ioredis 5.
// Jest gives every test file its own copy of process.env, so other projects never see this.
import { fileURLToPath, URL } from 'node:url';

const hook = fileURLToPath(new URL('./ioredis5-hook.mjs', import.meta.url));
process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --import ${hook}`.trim();
