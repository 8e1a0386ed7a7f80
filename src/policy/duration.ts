import ms from 'ms'
import { DAY, HOUR, MINUTE } from '../engine/units.js'

/** A duration in a policy file: `0`, or a number with a unit (30s, 1.5h, 1d); a plain number of seconds is an integer instead. */
export const DURATION_PATTERN = '^(0|[0-9]+(\\.[0-9]+)?(s|m|h|d))$'

/**
 * Converts a validated duration (seconds as a number, or `30s`, `5m`, `1h`, `1d`) to whole
 * seconds. The schema has already constrained the shape; `ms` does the unit arithmetic.
 */
export function toSeconds (value: number | string): number {
  if (typeof value === 'number') return value
  if (value === '0') return 0
  const millis = ms(value as ms.StringValue)
  if (typeof millis !== 'number' || !Number.isFinite(millis) || millis < 0) {
    throw new Error(`not a duration: ${value}`)
  }
  return Math.round(millis / 1000)
}

/** 300 -> "5m", 90 -> "90s", 0 -> "0s": for messages, not for parsing. */
export function formatSeconds (seconds: number): string {
  if (seconds !== 0 && seconds % DAY === 0) return `${seconds / DAY}d`
  if (seconds !== 0 && seconds % HOUR === 0) return `${seconds / HOUR}h`
  if (seconds !== 0 && seconds % MINUTE === 0) return `${seconds / MINUTE}m`
  return `${seconds}s`
}
