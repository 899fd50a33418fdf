import {
  COMPRESSION_ALGORITHMS,
  isCompressionAvailable,
  type CompressionAlgorithm,
  type CompressionSettings,
} from '../serialization/payload-compression.js';

/** `compression: true`, or an option left out: the measurements behind them are in bench/README.md. */
export const COMPRESSION_DEFAULTS = Object.freeze({ algorithm: 'gzip' as CompressionAlgorithm, threshold: 16_384 });

const FIELDS = ['algorithm', 'threshold', 'level'];
const NAMES = Object.keys(COMPRESSION_ALGORITHMS) as CompressionAlgorithm[];

/**
 * The module's `compression` option: undefined when off. Problems are pushed to `problems` (the
 * module reports them all at once), each naming the field to change.
 */
export function resolveCompression(option: unknown, problems: string[]): CompressionSettings | undefined {
  if (option === undefined || option === false) return undefined;
  if (option === true) option = {};
  if (typeof option !== 'object' || option === null || Array.isArray(option)) {
    problems.push(`compression must be true, false or { algorithm?, threshold?, level? } (got ${show(option)})`);
    return undefined;
  }
  const unknown = Object.keys(option).filter((field) => !FIELDS.includes(field));
  if (unknown.length > 0) {
    problems.push(`compression has no option '${unknown[0]}' (it has ${FIELDS.join(', ')})`);
    return undefined;
  }
  const {
    algorithm = COMPRESSION_DEFAULTS.algorithm,
    threshold = COMPRESSION_DEFAULTS.threshold,
    level,
  } = option as { algorithm?: unknown; threshold?: unknown; level?: unknown };
  const before = problems.length;
  if (!NAMES.includes(algorithm as CompressionAlgorithm)) {
    problems.push(
      `compression.algorithm must be ${NAMES.map((name) => `'${name}'`).join(', ')} (got ${show(algorithm)})`,
    );
    return undefined;
  }
  const name = algorithm as CompressionAlgorithm;
  if (!isCompressionAvailable(name)) {
    problems.push(
      `compression.algorithm '${name}' needs a Node.js whose node:zlib has it (22.15+ or 23.8+), and ` +
        `this is ${process.version}: use 'brotli' or 'gzip', or upgrade Node`,
    );
  }
  if (typeof threshold !== 'number' || !Number.isSafeInteger(threshold) || threshold < 0) {
    problems.push(
      `compression.threshold must be a whole number of bytes >= 0, e.g. 16384 for 16 KiB (got ${show(threshold)})`,
    );
  }
  const { min, max, default: fallback } = COMPRESSION_ALGORITHMS[name].levels;
  if (level !== undefined && (typeof level !== 'number' || !Number.isInteger(level) || level < min || level > max)) {
    problems.push(`compression.level must be an integer from ${min} to ${max} for ${name} (got ${show(level)})`);
  }
  if (problems.length > before) return undefined;
  return { algorithm: name, threshold: threshold as number, level: (level as number | undefined) ?? fallback };
}

function show(value: unknown): string {
  if (typeof value === 'string') return `'${value}'`;
  if (Array.isArray(value)) return `[${value.map(show).join(', ')}]`;
  return String(value);
}
