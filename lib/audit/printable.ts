/** Control characters, and the Unicode ones that move or reorder text (line separators, bidi overrides). */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * `text` as it may reach a terminal or a log line: key names come from Redis, where anyone could write
 * them, and an escape sequence or a newline in one would rewrite the screen or forge a log line. Each
 * such character is shown as its escape (`\x1b`, `\u2028`) instead.
 */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (char) => {
    const code = char.charCodeAt(0);
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16)}`;
  });
}
