// Duration parsing: the one place every TTL / timeout option is turned into milliseconds.
import { isDurationString, toMilliseconds, toPositiveMilliseconds } from '../../lib/options/duration.js';

describe('duration parsing', () => {
  it.each([
    ['1500ms', 1_500],
    ['90s', 90_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['7d', 604_800_000],
    ['1.5h', 5_400_000],
    [' 2 s ', 2_000],
  ])('%p is %p ms whatever the bare-number unit', (input, ms) => {
    expect(toMilliseconds(input, 's')).toBe(ms);
    expect(toMilliseconds(input, 'ms')).toBe(ms);
    expect(isDurationString(input)).toBe(true);
  });

  it('reads a bare number as seconds for kept things and milliseconds for waited-for things', () => {
    expect(toMilliseconds(90, 's')).toBe(90_000);
    expect(toMilliseconds(250, 'ms')).toBe(250);
    expect(toMilliseconds(0.5, 's')).toBe(500);
  });

  it.each(['abc', '', '5', '5 minutes', '-5s', '5M', '1w', 's', '1e3ms', 'user_profile'])('rejects %p', (input) => {
    expect(toMilliseconds(input, 's')).toBeUndefined();
    expect(isDurationString(input)).toBe(false);
  });

  it.each([null, undefined, {}, [], true, 10n])('rejects the non-duration %p', (input) => {
    expect(toMilliseconds(input, 's')).toBeUndefined();
  });

  it.each([0, -1, Infinity, -Infinity, NaN, '0s', '0ms'])('toPositiveMilliseconds rejects %p', (input) => {
    expect(toPositiveMilliseconds(input, 's')).toBeUndefined();
  });

  it('toPositiveMilliseconds keeps positive finite durations', () => {
    expect(toPositiveMilliseconds(1, 's')).toBe(1_000);
    expect(toPositiveMilliseconds('1ms', 's')).toBe(1);
  });
});
