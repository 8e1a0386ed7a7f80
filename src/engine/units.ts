/**
 * Units of time in seconds: requests, policies, the history and the audit trail all count time
 * in seconds (multiply by 1000 where a timer wants milliseconds).
 */
export const MINUTE = 60
export const HOUR = 60 * MINUTE
export const DAY = 24 * HOUR
