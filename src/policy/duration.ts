import ms from 'ms'

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
  if (seconds !== 0 && seconds % 86400 === 0) return `${seconds / 86400}d`
  if (seconds !== 0 && seconds % 3600 === 0) return `${seconds / 3600}h`
  if (seconds !== 0 && seconds % 60 === 0) return `${seconds / 60}m`
  return `${seconds}s`
}
