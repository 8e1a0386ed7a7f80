/**
 * The data-loss check of the Redis read scripts (see the file comment of redis-history.ts), written
 * once: the history read and the payment read put this Lua function at their top and call it.
 * `read_epoch(key, candidate)` returns '' when `candidate` is '' (no check asked); otherwise the
 * epoch stored at `key`, writing `candidate` there first when none exists.
 */
export const READ_EPOCH_LUA = `
local function read_epoch (key, candidate)
  if candidate == '' then return '' end
  local epoch = redis.call('GET', key)
  if not epoch then
    redis.call('SET', key, candidate)
    epoch = candidate
  end
  return epoch
end
`
