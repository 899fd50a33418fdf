/**
 * The instrumentation scope of every tracer and meter this folder asks for: the package's name and
 * version. The version is written here rather than read from package.json, which neither build can
 * import the same way; test/unit/opentelemetry-module.spec.ts fails when the two drift apart.
 */
export const INSTRUMENTATION_SCOPE = Object.freeze({ name: 'nestjs-redis-cache', version: '0.1.0' });
