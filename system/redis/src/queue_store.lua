-- The waiting-room store, one script: every operation on one event's room
-- runs here, atomically (the counters are read and written in one step).
--
-- Keys (all share the hash tag {q:<event>}; the adapter passes them in
-- this order):
--   1 room  HASH  opens onsale amax arate idle abandon ttl (settings),
--                 seq (joins so far), total (admitted so far),
--                 laststep (last admission step), grace (no drop before),
--                 r0..r9 "<second>:<count>" admissions per second (ring)
--   2 wait  ZSET  waiting ticket -> score (ticketing_domain::queue::place_score)
--   3 seen  ZSET  waiting ticket -> last time its visitor asked
--   4 tk    HASH  ticket -> "W|<visitor>|<joined>" | "A|<visitor>|<admitted>|<token expiry>" | "X|<visitor>"
--   5 act   ZSET  active visitor -> slot held until
--   6 vt    HASH  visitor -> ticket
--   7 hv    HASH  hold made under an admission -> visitor
--   8 vh    HASH  visitor -> its bound holds, space-separated
--   9 ct    HASH  customer -> its latest ticket
--  10 tc    HASH  ticket -> the customer who joined with it
-- ARGV: 1 op, 2 now_ms, 3.. op arguments. Answers are JSON:
-- {"ok": ...} or {"err": "<Code>"}. Integers travel as "%d" text.

local K_ROOM, K_WAIT, K_SEEN, K_TK, K_ACT, K_VT = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local K_HV, K_VH, K_CT, K_TC = KEYS[7], KEYS[8], KEYS[9], KEYS[10]
local OP = ARGV[1]
local NOW = tonumber(ARGV[2])
local FIFO_BASE = 4503599627370496 -- 2^52
local WINDOW = 10

local function fmt(n) return string.format('%d', n) end
local function ok(v) return cjson.encode({ok = v}) end
local function err(code) return cjson.encode({err = code}) end

local SETTINGS = {'opens', 'onsale', 'amax', 'arate', 'idle', 'abandon', 'ttl'}

local function config()
  local v = redis.call('HMGET', K_ROOM, unpack(SETTINGS))
  if not v[1] then return nil end
  local c = {}
  for i, k in ipairs(SETTINGS) do c[k] = tonumber(v[i]) end
  return c
end

local function config_out(c)
  local t = {}
  for _, k in ipairs(SETTINGS) do t[k] = fmt(c[k]) end
  return t
end

local function split(rec)
  local parts = {}
  for p in string.gmatch(rec, '[^|]+') do parts[#parts + 1] = p end
  return parts
end

-- Admissions in second `sec` (slot) and in the whole seconds before it.
local function ring_get(sec)
  local this, window = 0, 0
  for i = 0, WINDOW - 1 do
    local raw = redis.call('HGET', K_ROOM, 'r' .. i)
    if raw then
      local s, n = string.match(raw, '^(%d+):(%d+)$')
      s, n = tonumber(s), tonumber(n)
      if s == sec then this = n end
      if s < sec and sec - s <= WINDOW then window = window + n end
    end
  end
  return this, window
end

local function ring_add(sec, n)
  local field = 'r' .. (sec % WINDOW)
  local raw = redis.call('HGET', K_ROOM, field)
  local count = 0
  if raw then
    local s, c = string.match(raw, '^(%d+):(%d+)$')
    if tonumber(s) == sec then count = tonumber(c) end
  end
  redis.call('HSET', K_ROOM, field, fmt(sec) .. ':' .. fmt(count + n))
  redis.call('HINCRBY', K_ROOM, 'total', n)
end

-- Frees visitor v's slot; an admitted ticket becomes expired.
local function free(v)
  redis.call('ZREM', K_ACT, v)
  local bound = redis.call('HGET', K_VH, v)
  if bound then
    for h in string.gmatch(bound, '%S+') do redis.call('HDEL', K_HV, h) end
    redis.call('HDEL', K_VH, v)
  end
  local t = redis.call('HGET', K_VT, v)
  if not t then return end
  local rec = redis.call('HGET', K_TK, t)
  if rec and string.sub(rec, 1, 1) == 'A' then
    redis.call('HSET', K_TK, t, 'X|' .. v)
  end
end

local function token_expiry(v)
  local t = redis.call('HGET', K_VT, v)
  if not t then return nil end
  local rec = redis.call('HGET', K_TK, t)
  if not rec or string.sub(rec, 1, 1) ~= 'A' then return nil end
  return tonumber(split(rec)[4])
end

if OP == 'open' then
  for i, k in ipairs(SETTINGS) do redis.call('HSET', K_ROOM, k, ARGV[2 + i]) end
  return ok(true)
end

local c = config()
if not c then return err('UnknownRoom') end

if OP == 'get' then return ok(config_out(c)) end

if OP == 'caps' then
  redis.call('HSET', K_ROOM, 'amax', ARGV[3], 'arate', ARGV[4])
  return ok(config_out(config()))
end

-- Customer cu's place while it is live (waiting, or admitted with the
-- slot held): its ticket and record, or nil.
local function live_place(cu)
  local t = redis.call('HGET', K_CT, cu)
  if not t then return nil end
  local rec = redis.call('HGET', K_TK, t)
  if not rec then return nil end
  local p = split(rec)
  if p[1] == 'W' then return t, p end
  if p[1] == 'A' then
    local untl = tonumber(redis.call('ZSCORE', K_ACT, p[2]))
    if untl and untl > NOW then return t, p end
  end
  return nil
end

if OP == 'join' then
  local t, v, key, cu = ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6]
  if NOW < c.opens then return err('NotOpen') end
  if cu ~= '' then
    local lt, lp = live_place(cu)
    if lt then
      if lp[1] == 'W' then redis.call('ZADD', K_SEEN, NOW, lt) end
      return ok({t = lt, v = lp[2], r = '1'})
    end
  end
  if redis.call('HEXISTS', K_TK, t) == 1 or redis.call('HEXISTS', K_VT, v) == 1 then
    return err('DuplicateTicket')
  end
  if cu ~= '' then
    redis.call('HSET', K_CT, cu, t)
    redis.call('HSET', K_TC, t, cu)
  end
  local seq = redis.call('HINCRBY', K_ROOM, 'seq', 1)
  local score = key
  if NOW >= c.onsale then score = FIFO_BASE + seq end
  redis.call('ZADD', K_WAIT, score, t)
  redis.call('HSET', K_TK, t, 'W|' .. v .. '|' .. fmt(NOW))
  redis.call('HSET', K_VT, v, t)
  redis.call('ZADD', K_SEEN, NOW, t)
  return ok({t = t, v = v, r = '0'})
end

if OP == 'place' then
  local t = ARGV[3]
  local rec = redis.call('HGET', K_TK, t)
  if not rec then return ok(false) end
  local p = split(rec)
  local out = {v = p[2], s = p[1]}
  local cu = redis.call('HGET', K_TC, t)
  if cu then out.c = cu end
  if p[1] == 'W' then
    redis.call('ZADD', K_SEEN, NOW, t)
    if NOW < c.onsale then
      out.s = 'P'
    else
      out.ahead = fmt(redis.call('ZRANK', K_WAIT, t))
    end
  elseif p[1] == 'A' then
    local untl = tonumber(redis.call('ZSCORE', K_ACT, p[2]))
    if untl and untl > NOW then
      out.adm, out.exp, out['until'] = p[3], p[4], fmt(untl)
    else
      out.s = 'X'
    end
  end
  return ok(out)
end

-- After a gap between steps longer than abandon/2 nobody could reach the
-- room: a grace of `abandon` for the waiting, active slots' ends moved
-- later by the gap (never past the token) — ticketing_domain::queue::outage_gap_ms.
local function after_outage()
  local last = tonumber(redis.call('HGET', K_ROOM, 'laststep') or '0')
  redis.call('HSET', K_ROOM, 'laststep', fmt(NOW))
  local gap = NOW - last
  if last == 0 or gap <= math.floor(c.abandon / 2) then return end
  redis.call('HSET', K_ROOM, 'grace', fmt(NOW + c.abandon))
  local slots = redis.call('ZRANGE', K_ACT, 0, -1, 'WITHSCORES')
  for i = 1, #slots, 2 do
    local v, untl = slots[i], tonumber(slots[i + 1])
    local exp = token_expiry(v) or untl
    redis.call('ZADD', K_ACT, math.min(untl + gap, exp), v)
  end
end

if OP == 'admit' then
  local out = {admitted = '', expired = '0', abandoned = '0'}
  if NOW >= c.onsale then
    after_outage()
    local due = redis.call('ZRANGEBYSCORE', K_ACT, '-inf', NOW)
    for _, v in ipairs(due) do free(v) end
    local cutoff = math.max(NOW - c.abandon, 0)
    local gone = {}
    if NOW >= tonumber(redis.call('HGET', K_ROOM, 'grace') or '0') then
      gone = redis.call('ZRANGEBYSCORE', K_SEEN, '-inf', cutoff)
    end
    for _, t in ipairs(gone) do
      redis.call('ZREM', K_WAIT, t)
      redis.call('ZREM', K_SEEN, t)
      local p = split(redis.call('HGET', K_TK, t))
      redis.call('HSET', K_TK, t, 'X|' .. p[2])
    end
    local sec = math.floor(NOW / 1000)
    local this = ring_get(sec)
    local budget = math.min(c.amax - redis.call('ZCARD', K_ACT), c.arate - this,
      redis.call('ZCARD', K_WAIT))
    local admitted = {}
    if budget > 0 then
      local popped = redis.call('ZPOPMIN', K_WAIT, budget)
      for i = 1, #popped, 2 do
        local t = popped[i]
        local rec = split(redis.call('HGET', K_TK, t))
        local v, joined = rec[2], tonumber(rec[3] or NOW)
        local exp = NOW + c.ttl
        redis.call('HSET', K_TK, t, 'A|' .. v .. '|' .. fmt(NOW) .. '|' .. fmt(exp))
        redis.call('ZADD', K_ACT, math.min(NOW + c.idle, exp), v)
        redis.call('ZREM', K_SEEN, t)
        admitted[#admitted + 1] = t .. '|' .. v .. '|' .. fmt(NOW - joined)
      end
    end
    ring_add(sec, #admitted)
    out.admitted = table.concat(admitted, ';')
    out.expired, out.abandoned = fmt(#due), fmt(#gone)
  end
  out.waiting = fmt(redis.call('ZCARD', K_WAIT))
  out.active = fmt(redis.call('ZCARD', K_ACT))
  return ok(out)
end

if OP == 'touch' then
  local v = ARGV[3]
  local untl = tonumber(redis.call('ZSCORE', K_ACT, v))
  if not untl or untl <= NOW then return ok(false) end
  local exp = token_expiry(v)
  if not exp then return ok(false) end
  redis.call('ZADD', K_ACT, math.min(NOW + c.idle, exp), v)
  return ok(true)
end

if OP == 'leave' then
  free(ARGV[3])
  return ok(true)
end

if OP == 'bind' then
  local v, h = ARGV[3], ARGV[4]
  if redis.call('ZSCORE', K_ACT, v) then
    redis.call('HSET', K_HV, h, v)
    local bound = redis.call('HGET', K_VH, v)
    if bound then bound = bound .. ' ' .. h else bound = h end
    redis.call('HSET', K_VH, v, bound)
  end
  return ok(true)
end

if OP == 'bought' then
  local v = redis.call('HGET', K_HV, ARGV[3])
  if v then free(v) end
  return ok(true)
end

if OP == 'stats' then
  local _, window = ring_get(math.floor(NOW / 1000))
  return ok({room = config_out(c), waiting = fmt(redis.call('ZCARD', K_WAIT)),
    active = fmt(redis.call('ZCARD', K_ACT)),
    total = fmt(tonumber(redis.call('HGET', K_ROOM, 'total') or '0')),
    window = fmt(window)})
end

return err('UnknownOp')
