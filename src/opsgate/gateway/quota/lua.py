"""The Redis scripts: one admit (check every subject and dimension, then reserve, atomically)
and one finish (settle or release). Times come from the Redis server's clock, so replicas
with skewed clocks still share one limit.

Per subject the admit script gets 5 keys (rate, tokens, slots, budget totals, budget leases)
and 5 arguments (rpm, tpm, concurrency, budget units or -1, period end in unix seconds).
Arrival times are stored in microseconds since 2026-01-01, where doubles keep sub-
microsecond precision. Budget leases are members "<reservation id>|<units>" scored by
expiry, so an expired lease gives its units back to the budget it held.
"""

from __future__ import annotations

# Seconds since the Unix epoch of 2026-01-01T00:00:00Z.
EPOCH = 1_767_225_600

_COMMON = """
local t = redis.call('TIME')
local now = (tonumber(t[1]) - EPOCH_S) * 1000000 + tonumber(t[2])
local W = 60000000
local function fmt(x) return string.format('%.3f', x) end
local function units(x) return string.format('%.0f', x) end
local function set_tat(key, tat)
  if tat > now then
    redis.call('SET', key, fmt(tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
  else
    redis.call('DEL', key)
  end
end
local function budget_expiry(period_end, lease)
  return units(period_end + math.ceil(lease / 1000000) + 3600)
end
""".replace("EPOCH_S", str(EPOCH))

ADMIT = (
    _COMMON
    + """
local rid = ARGV[1]
local lease = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local tokens = tonumber(ARGV[4])
local cost = tonumber(ARGV[5])
local fail_i, fail_dim, fail_kind, fail_wait = 0, '', '', -1
local new_rpm, new_tpm = {}, {}

local function deny(i, dim, kind, wait)
  if wait > fail_wait then
    fail_i, fail_dim, fail_kind, fail_wait = i, dim, kind, wait
  end
end

local function gcra(key, amount, limit)
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  local nt = tat + amount * W / limit
  return nt, nt - now - W
end

local function purge(zkey, hkey)
  local old = redis.call('ZRANGEBYSCORE', zkey, '-inf', now, 'LIMIT', 0, 512)
  for _, m in ipairs(old) do
    local amt = tonumber(string.match(m, '|(%d+)$')) or 0
    if amt > 0 then redis.call('HINCRBY', hkey, 'r', units(-amt)) end
    redis.call('ZREM', zkey, m)
  end
end

for i = 1, n do
  local k = (i - 1) * 5
  local a = 5 + (i - 1) * 5
  local rpm, tpm = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local conc, budget = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  if rpm > 0 then
    local nt, over = gcra(KEYS[k + 1], 1, rpm)
    if over > 1 then deny(i, 'rpm', 'limit', over) else new_rpm[i] = nt end
  end
  if tpm > 0 and tokens > 0 then
    if tokens > tpm then
      deny(i, 'tpm', 'too_large', W)
    else
      local nt, over = gcra(KEYS[k + 2], tokens, tpm)
      if over > 1 then deny(i, 'tpm', 'limit', over) else new_tpm[i] = nt end
    end
  end
  if conc > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[k + 3], '-inf', now)
    if redis.call('ZCARD', KEYS[k + 3]) >= conc then deny(i, 'concurrency', 'limit', 1000000) end
  end
  if budget >= 0 then
    purge(KEYS[k + 5], KEYS[k + 4])
    local totals = redis.call('HMGET', KEYS[k + 4], 's', 'r')
    local spent, held = tonumber(totals[1] or '0'), tonumber(totals[2] or '0')
    if spent + held + cost > budget then
      local to_end = math.max(1000000, (tonumber(ARGV[a + 5]) - EPOCH_S) * 1000000 - now)
      if cost > budget then
        deny(i, 'budget', 'too_large', to_end)
      elseif spent + cost > budget then
        deny(i, 'budget', 'limit', to_end)
      else
        deny(i, 'budget', 'held', 1000000)
      end
    end
  end
end

if fail_wait >= 0 then
  return {0, fail_i, fail_dim, fail_kind, units(fail_wait)}
end

for i = 1, n do
  local k = (i - 1) * 5
  local a = 5 + (i - 1) * 5
  if new_rpm[i] then set_tat(KEYS[k + 1], new_rpm[i]) end
  if new_tpm[i] then set_tat(KEYS[k + 2], new_tpm[i]) end
  if tonumber(ARGV[a + 3]) > 0 then
    redis.call('ZADD', KEYS[k + 3], units(now + lease), rid)
    redis.call('PEXPIRE', KEYS[k + 3], units(math.ceil(lease / 1000) + 1000))
  end
  if tonumber(ARGV[a + 4]) >= 0 then
    local exp = budget_expiry(tonumber(ARGV[a + 5]), lease)
    if cost > 0 then redis.call('HINCRBY', KEYS[k + 4], 'r', ARGV[5]) end
    redis.call('ZADD', KEYS[k + 5], units(now + lease), rid .. '|' .. ARGV[5])
    redis.call('EXPIREAT', KEYS[k + 4], exp)
    redis.call('EXPIREAT', KEYS[k + 5], exp)
  end
end
return {1, 0, '', '', '0'}
""".replace("EPOCH_S", str(EPOCH))
)

# Per subject: 4 keys (tokens, slots, budget totals, budget leases) and 3 arguments
# (tpm, 1 if budgeted else 0, period end). ARGV[4] = spend in units, or -1 to release.
FINISH = (
    _COMMON
    + """
local rid = ARGV[1]
local n = tonumber(ARGV[2])
local delta = tonumber(ARGV[3])
local spend = tonumber(ARGV[4])
local est = ARGV[5]
local lease = tonumber(ARGV[6])
for i = 1, n do
  local k = (i - 1) * 4
  local a = 6 + (i - 1) * 3
  local tpm = tonumber(ARGV[a + 1])
  if tpm > 0 and delta ~= 0 then
    local tat = tonumber(redis.call('GET', KEYS[k + 1]) or '0')
    -- More tokens than estimated is charged as debt from now; fewer is refunded.
    if delta > 0 and tat < now then tat = now end
    set_tat(KEYS[k + 1], tat + delta * W / tpm)
  end
  redis.call('ZREM', KEYS[k + 2], rid)
  if ARGV[a + 2] == '1' then
    if redis.call('ZREM', KEYS[k + 4], rid .. '|' .. est) == 1 and est ~= '0' then
      redis.call('HINCRBY', KEYS[k + 3], 'r', '-' .. est)
    end
    if spend > 0 then
      redis.call('HINCRBY', KEYS[k + 3], 's', ARGV[4])
      local exp = budget_expiry(tonumber(ARGV[a + 3]), lease)
      redis.call('EXPIREAT', KEYS[k + 3], exp)
    end
  end
end
return 1
"""
)
