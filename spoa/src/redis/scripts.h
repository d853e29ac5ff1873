/*
 * The Lua scripts of redis/fleet.c. Both read Redis' own clock (TIME), so every agent of
 * the fleet uses one clock. Keys: "jr:" + the counter key of limit/limiter.h; a sliding
 * log uses three (<key>:z the entries' times, <key>:h their costs, <key>:s the sum).
 * Meant for a single Redis (or a primary with replicas): the keys of one request do not
 * share a hash slot, so Redis Cluster is not supported.
 *
 * ADMIT  KEYS = one per limit; ARGV = request id, lease ms, n, then 7 per limit:
 *        algorithm (enum lim_algo), amount, window us, burst, cost, period end (Unix s),
 *        key TTL ms. Checks every limit, charges all only if all admit. Returns
 *        {admitted, then per limit: admit, limit, remaining, reset ms, retry ms}.
 *        Idempotent per request id: an admission leaves "jr:adm:<id>" holding its answer
 *        for ADMIT_MEMO_MS, and a second ADMIT of that id with the same keys (HAProxy
 *        retries a decision on another agent when the first one died before answering)
 *        returns that answer without charging again: a retried request holds one slot.
 * SETTLE KEYS = one per limit; ARGV = request id, n, then 7 per limit: algorithm,
 *        amount, window us, burst, delta, slot (its position in ADMIT), release (0/1).
 *        A period counter that does not exist yet (a batch's usage charged before any
 *        request of the period: pipeline/limits.h, limits_charge_batch) is created by a
 *        positive delta, kept 2 days (a day's) or 33 days (a month's); its key names its
 *        period, so a later period never reads it.
 */
#ifndef JR_REDIS_SCRIPTS_H
#define JR_REDIS_SCRIPTS_H

/* How long an admission's answer is remembered for a retry of the same request: far
 * longer than a decision lasts (spoe.conf "timeout processing"), short enough that the
 * memo keys of a busy fleet stay small (30 s at 1,000 admissions/s: ~30,000 keys, a few
 * MB). */
#define ADMIT_MEMO_MS "30000"

#define FLEET_ADMIT_LUA \
"local t = redis.call('TIME')\n" \
"local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n" \
"local id, lease, n = ARGV[1], tonumber(ARGV[2]) * 1000, tonumber(ARGV[3])\n" \
"local memo = id ~= '-' and ('jr:adm:' .. id) or nil\n" \
"local keyset = table.concat(KEYS, ' ')\n" \
"if memo then\n" \
"  local prev = redis.call('GET', memo)\n" \
"  if prev then prev = cjson.decode(prev); if prev.k == keyset then return prev.o end end\n" \
"end\n" \
"local out, ok, st = {0}, 1, {}\n" \
"local function a(i, j) return tonumber(ARGV[3 + (i - 1) * 7 + j]) end\n" \
"local function expire_log(k, win)\n" \
"  local z, h, s = k .. ':z', k .. ':h', k .. ':s'\n" \
"  local sum = tonumber(redis.call('GET', s)) or 0\n" \
"  while true do\n" \
"    local old = redis.call('ZRANGEBYSCORE', z, '-inf', now - win, 'LIMIT', 0, 500)\n" \
"    if #old == 0 then break end\n" \
"    local c = redis.call('HMGET', h, unpack(old))\n" \
"    for j = 1, #old do sum = sum - (tonumber(c[j]) or 0) end\n" \
"    redis.call('HDEL', h, unpack(old))\n" \
"    redis.call('ZREM', z, unpack(old))\n" \
"    if sum < 0 then sum = 0 end\n" \
"    redis.call('SET', s, sum)\n" \
"  end\n" \
"  return sum\n" \
"end\n" \
"for i = 1, n do\n" \
"  local kind, amount, win, burst, cost = a(i, 1), a(i, 2), a(i, 3), a(i, 4), a(i, 5)\n" \
"  local k = KEYS[i]\n" \
"  local admit, rem, reset, retry = 0, 0, 0, 0\n" \
"  local cap = burst > 0 and burst or amount\n" \
"  if kind == 0 then\n" \
"    local rate = amount / win\n" \
"    local h = redis.call('HMGET', k, 'l', 't')\n" \
"    local level, ts = tonumber(h[1]) or cap, tonumber(h[2]) or now\n" \
"    if now > ts then level = math.min(cap, level + (now - ts) * rate) end\n" \
"    st[i] = level\n" \
"    if level + 1e-9 >= cost then admit = 1; rem = math.floor(level - cost + 1e-9); reset = (cap - level + cost) / rate\n" \
"    else rem = math.floor(math.max(level, 0) + 1e-9); reset = (cap - level) / rate\n" \
"      if cost <= cap then retry = (cost - level) / rate end end\n" \
"  elseif kind == 1 then\n" \
"    local T = win / amount\n" \
"    local tau = cap * T\n" \
"    local tat = tonumber(redis.call('GET', k)) or now\n" \
"    if tat < now then tat = now end\n" \
"    local nt = tat + cost * T\n" \
"    st[i] = nt\n" \
"    if nt - now <= tau + 1e-6 then admit = 1; rem = math.floor((tau - (nt - now)) / T + 1e-9); reset = nt - now\n" \
"    else rem = math.floor(math.max(0, tau - (tat - now)) / T + 1e-9); reset = tat - now\n" \
"      if cost <= cap then retry = nt - tau - now end end\n" \
"  elseif kind == 2 then\n" \
"    local sum = expire_log(k, win)\n" \
"    st[i] = sum\n" \
"    if sum + cost <= amount then admit = 1; rem = amount - sum - cost; reset = win\n" \
"    else rem = math.max(0, amount - sum)\n" \
"      local e = redis.call('ZRANGE', k .. ':z', 0, 999, 'WITHSCORES')\n" \
"      if #e > 0 then reset = tonumber(e[#e]) + win - now end\n" \
"      if cost <= amount then\n" \
"        local excess, costs = sum + cost - amount, {}\n" \
"        retry = win\n" \
"        for j = 1, #e, 2 do\n" \
"          excess = excess - (tonumber(redis.call('HGET', k .. ':h', e[j])) or 0)\n" \
"          if excess <= 0 then retry = tonumber(e[j + 1]) + win - now; break end\n" \
"        end\n" \
"      end\n" \
"    end\n" \
"  elseif kind == 4 then\n" \
"    redis.call('ZREMRANGEBYSCORE', k, '-inf', now)\n" \
"    local c = redis.call('ZCARD', k)\n" \
"    if c < amount then admit = 1; rem = amount - c - 1 else retry = 1000000 end\n" \
"  elseif kind == 6 or kind == 7 then\n" \
"    local used = tonumber(redis.call('GET', k)) or 0\n" \
"    reset = a(i, 6) * 1000000 - now\n" \
"    if cost == 0 or used + cost <= amount then admit = 1; rem = math.max(0, amount - used - cost)\n" \
"    else rem = math.max(0, amount - used); if cost <= amount then retry = reset end end\n" \
"  end\n" \
"  if admit == 0 then ok = 0 end\n" \
"  out[#out + 1] = admit; out[#out + 1] = amount; out[#out + 1] = rem\n" \
"  out[#out + 1] = math.ceil(math.max(reset, 0) / 1000); out[#out + 1] = math.ceil(math.max(retry, 0) / 1000)\n" \
"end\n" \
"out[1] = ok\n" \
"if ok == 1 then\n" \
"  for i = 1, n do\n" \
"    local kind, cost, ttl = a(i, 1), a(i, 5), a(i, 7)\n" \
"    local k = KEYS[i]\n" \
"    if kind == 0 then redis.call('HSET', k, 'l', st[i] - cost, 't', now); redis.call('PEXPIRE', k, ttl)\n" \
"    elseif kind == 1 then redis.call('SET', k, st[i], 'PX', ttl)\n" \
"    elseif kind == 2 then\n" \
"      local m = id .. ':' .. i\n" \
"      redis.call('ZADD', k .. ':z', now, m); redis.call('HSET', k .. ':h', m, cost)\n" \
"      redis.call('SET', k .. ':s', st[i] + cost)\n" \
"      for _, x in ipairs({':z', ':h', ':s'}) do redis.call('PEXPIRE', k .. x, ttl) end\n" \
"    elseif kind == 4 then redis.call('ZADD', k, now + lease, id); redis.call('PEXPIRE', k, lease + 60000)\n" \
"    elseif kind == 6 or kind == 7 then redis.call('INCRBY', k, cost); redis.call('PEXPIREAT', k, a(i, 6) * 1000 + 86400000)\n" \
"    end\n" \
"  end\n" \
"  if memo then redis.call('SET', memo, cjson.encode({k = keyset, o = out}), 'PX', " ADMIT_MEMO_MS ") end\n" \
"end\n" \
"return out\n"

#define FLEET_SETTLE_LUA \
"local t = redis.call('TIME')\n" \
"local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n" \
"local id, n = ARGV[1], tonumber(ARGV[2])\n" \
"local function a(i, j) return tonumber(ARGV[2 + (i - 1) * 7 + j]) end\n" \
"for i = 1, n do\n" \
"  local kind, amount, win, burst, delta, slot, rel = a(i, 1), a(i, 2), a(i, 3), a(i, 4), a(i, 5), a(i, 6), a(i, 7)\n" \
"  local k = KEYS[i]\n" \
"  local cap = burst > 0 and burst or amount\n" \
"  if kind == 4 then\n" \
"    if rel == 1 then redis.call('ZREM', k, id) end\n" \
"  elseif delta ~= 0 then\n" \
"    if kind == 0 then\n" \
"      local l = tonumber(redis.call('HGET', k, 'l'))\n" \
"      if l then redis.call('HSET', k, 'l', math.min(cap, l - delta)) end\n" \
"    elseif kind == 1 then\n" \
"      local tat = tonumber(redis.call('GET', k))\n" \
"      if tat then tat = tat + delta * win / amount; if tat < now then tat = now end\n" \
"        redis.call('SET', k, tat, 'KEEPTTL') end\n" \
"    elseif kind == 2 then\n" \
"      local m = id .. ':' .. slot\n" \
"      local cur = tonumber(redis.call('HGET', k .. ':h', m))\n" \
"      if cur then\n" \
"        local v = math.max(0, cur + delta)\n" \
"        redis.call('HSET', k .. ':h', m, v); redis.call('INCRBY', k .. ':s', v - cur)\n" \
"      elseif delta > 0 then\n" \
"        m = m .. ':x'\n" \
"        redis.call('ZADD', k .. ':z', now, m); redis.call('HSET', k .. ':h', m, delta)\n" \
"        redis.call('INCRBY', k .. ':s', delta)\n" \
"        for _, x in ipairs({':z', ':h', ':s'}) do redis.call('PEXPIRE', k .. x, math.ceil(win / 1000) * 2) end\n" \
"      end\n" \
"    elseif kind == 6 or kind == 7 then\n" \
"      if redis.call('EXISTS', k) == 1 then\n" \
"        local v = redis.call('INCRBY', k, delta)\n" \
"        if v < 0 then redis.call('SET', k, 0, 'KEEPTTL') end\n" \
"      elseif delta > 0 then\n" \
"        redis.call('SET', k, delta, 'PX', kind == 6 and 172800000 or 2851200000)\n" \
"      end\n" \
"    end\n" \
"  end\n" \
"end\n" \
"return n\n"

#endif /* JR_REDIS_SCRIPTS_H */
