-- The seat store, one script: every operation on one event runs here,
-- atomically (Redis runs a script to completion before anything else).
--
-- Keys (all share the hash tag {ev:<event>} so the script is legal on
-- Redis Cluster; the adapter passes them in this order):
--   1 meta   HASH  version (gap-free change counter), avail (AVAILABLE seats)
--   2 state  HASH  seat -> "A" | "H:<hold>" | "S:<order>"
--   3 price  HASH  seat -> price in cents
--   4 hist   LIST  last N changes, "<version>|<A|H|S>|<seat>"; a traced
--                 confirm writes "S@<traceparent>" for S
--   5 exp    ZSET  active hold -> expires_at_ms
--   6 holds  HASH  active hold -> JSON {seats, amount, created, expires, pinned?, customer?}
--   7 tombs  HASH  gone hold -> JSON {k = expired|released|confirmed, order?, seats?, customer?}
--   8 tombz  ZSET  gone hold -> when it went (to forget tombstones)
--   9 cust   HASH  "s:<customer>" -> seats the customer has on the event
--                 (live holds and sold), "h:<customer>" -> live holds: what
--                 the per-customer limits count, kept by 'hold' and end_hold
-- ARGV: 1 op, 2 now_ms, 3 history limit, 4.. op arguments.
-- Numbers inside JSON are strings: Lua numbers are doubles and cjson prints
-- 14 significant digits, so integers travel as "%d" text.
-- Every answer is a JSON object: {"ok": ...} or {"err": "<Code>", ...}.

local K_META, K_STATE, K_PRICE, K_HIST = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local K_EXP, K_HOLDS, K_TOMBS, K_TOMBZ = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local K_CUST = KEYS[9]
local OP = ARGV[1]
local NOW = tonumber(ARGV[2])
local LIMIT = tonumber(ARGV[3])

local function fmt(n) return string.format('%d', n) end
local function ok(v) return cjson.encode({ok = v}) end
local function err(code, extra)
  local t = extra or {}
  t.err = code
  return cjson.encode(t)
end

local function exists() return redis.call('HEXISTS', K_META, 'version') == 1 end

-- One versioned change record per seat change; the history keeps LIMIT.
local function record(seat, st)
  local v = redis.call('HINCRBY', K_META, 'version', 1)
  redis.call('RPUSH', K_HIST, fmt(v) .. '|' .. st .. '|' .. seat)
  redis.call('LTRIM', K_HIST, -LIMIT, -1)
end

local function set_seat(seat, val, st)
  local old = redis.call('HGET', K_STATE, seat)
  if old == 'A' and val ~= 'A' then redis.call('HINCRBY', K_META, 'avail', -1) end
  if old ~= 'A' and val == 'A' then redis.call('HINCRBY', K_META, 'avail', 1) end
  redis.call('HSET', K_STATE, seat, val)
  record(seat, st)
end

local function get_hold(hid)
  local raw = redis.call('HGET', K_HOLDS, hid)
  if not raw then return nil end
  return cjson.decode(raw)
end

local function put_hold(hid, h)
  redis.call('HSET', K_HOLDS, hid, cjson.encode(h))
  redis.call('ZADD', K_EXP, h.expires, hid)
end

-- Ends an active hold: frees its seats unless confirmed, leaves a tombstone.
local function end_hold(hid, gone)
  local h = get_hold(hid)
  if not h then return nil end
  redis.call('HDEL', K_HOLDS, hid)
  redis.call('ZREM', K_EXP, hid)
  if h.customer then
    redis.call('HINCRBY', K_CUST, 'h:' .. h.customer, -1)
    if gone.k ~= 'confirmed' then
      redis.call('HINCRBY', K_CUST, 's:' .. h.customer, -#h.seats)
    end
  end
  if gone.k ~= 'confirmed' then
    for _, s in ipairs(h.seats) do set_seat(s, 'A', 'A') end
  end
  gone.customer = h.customer
  redis.call('HSET', K_TOMBS, hid, cjson.encode(gone))
  redis.call('ZADD', K_TOMBZ, ARGV[2], hid)
  return h
end

-- Expires due holds (expires_at <= now), at most `max` (nil: all).
local function expire_due(max)
  local due
  if max then
    due = redis.call('ZRANGEBYSCORE', K_EXP, '-inf', ARGV[2], 'LIMIT', 0, max)
  else
    due = redis.call('ZRANGEBYSCORE', K_EXP, '-inf', ARGV[2])
  end
  for _, hid in ipairs(due) do end_hold(hid, {k = 'expired'}) end
  return #due
end

-- The active hold, or the error saying why there is none (a gone hold's
-- answer names why and whose it was).
local function active(hid)
  local h = get_hold(hid)
  if h then return h, nil end
  local raw = redis.call('HGET', K_TOMBS, hid)
  if raw then
    local t = cjson.decode(raw)
    return nil, 'HoldGone', {gone = t.k, order = t.order, customer = t.customer}
  end
  return nil, 'HoldNotFound'
end

-- The first per-customer limit one more hold of n seats would break (nil
-- if none): ARGV 8 seats per event, 9 live holds; 0 is no limit.
local function over_limit(customer, n)
  local seats = tonumber(redis.call('HGET', K_CUST, 's:' .. customer) or '0')
  local holds = tonumber(redis.call('HGET', K_CUST, 'h:' .. customer) or '0')
  local max_seats, max_holds = tonumber(ARGV[8] or '0'), tonumber(ARGV[9] or '0')
  if max_seats > 0 and seats + n > max_seats then
    return {kind = 'SeatsPerEvent', count = fmt(seats), limit = fmt(max_seats)}
  end
  if max_holds > 0 and holds + 1 > max_holds then
    return {kind = 'ActiveHolds', count = fmt(holds), limit = fmt(max_holds)}
  end
  return nil
end

local function with_id(hid, h)
  h.hold_id = hid
  return h
end

if OP == 'stage' then
  -- ARGV 4: JSON [[seat, "price"], ...], one chunk of a new event's seats.
  -- Staged seats are invisible until 'activate' sets the version (every
  -- other op sees an unknown event), so a big event is registered in short
  -- scripts without ever being half visible. No-op once the event exists.
  if exists() then return ok('exists') end
  local seats = cjson.decode(ARGV[4])
  for _, sp in ipairs(seats) do
    redis.call('HSET', K_STATE, sp[1], 'A')
    redis.call('HSET', K_PRICE, sp[1], sp[2])
  end
  return ok('staged')

elseif OP == 'activate' then
  -- Makes the staged seats the event. Idempotent.
  if exists() then return ok('exists') end
  redis.call('HSET', K_META, 'version', 0, 'avail', redis.call('HLEN', K_STATE))
  return ok('created')

elseif OP == 'hold' then
  -- ARGV 4 hold id, 5 ttl_ms, 6 JSON seats, 7 JSON customer (or null),
  -- 8 seats per event, 9 live holds (a customer's limits; 0: none).
  local hid, ttl = ARGV[4], tonumber(ARGV[5])
  local seats = cjson.decode(ARGV[6])
  if not exists() then return err('UnknownEvent') end
  local unknown = {}
  for _, s in ipairs(seats) do
    if redis.call('HEXISTS', K_PRICE, s) == 0 then table.insert(unknown, s) end
  end
  if #unknown > 0 then return err('UnknownSeats', {seats = unknown}) end
  expire_due(nil)
  if redis.call('HEXISTS', K_HOLDS, hid) == 1 or redis.call('HEXISTS', K_TOMBS, hid) == 1 then
    return err('DuplicateHoldId')
  end
  local customer = cjson.decode(ARGV[7])
  if customer == cjson.null then customer = nil end
  if customer then
    local over = over_limit(customer, #seats)
    if over then return err('CustomerLimit', over) end
  end
  local taken = {}
  for _, s in ipairs(seats) do
    if redis.call('HGET', K_STATE, s) ~= 'A' then table.insert(taken, s) end
  end
  if #taken > 0 then return err('SeatsUnavailable', {seats = taken}) end
  local amount = 0
  for _, s in ipairs(seats) do
    amount = amount + tonumber(redis.call('HGET', K_PRICE, s))
    set_seat(s, 'H:' .. hid, 'H')
  end
  local h = {seats = seats, amount = fmt(amount), created = ARGV[2],
             expires = fmt(NOW + ttl)}
  if customer then
    h.customer = customer
    redis.call('HINCRBY', K_CUST, 's:' .. customer, #seats)
    redis.call('HINCRBY', K_CUST, 'h:' .. customer, 1)
  end
  put_hold(hid, h)
  return ok(with_id(hid, h))

elseif OP == 'get' then
  local hid = ARGV[4]
  local h, why, gone = active(hid)
  if not h then return err(why, gone) end
  if tonumber(h.expires) <= NOW then
    return err('HoldGone', {gone = 'expired', customer = h.customer})
  end
  return ok(with_id(hid, h))

elseif OP == 'extend' then
  -- ARGV 4 hold id, 5 hold_ms, 6 max_lifetime_ms.
  local hid = ARGV[4]
  expire_due(nil)
  local h, why, gone = active(hid)
  if not h then return err(why, gone) end
  if h.pinned then return err('HoldPinned') end
  local cap = tonumber(h.created) + tonumber(ARGV[6])
  local wanted = math.min(NOW + tonumber(ARGV[5]), cap)
  if wanted <= tonumber(h.expires) then return err('ExtensionLimit') end
  h.expires = fmt(wanted)
  put_hold(hid, h)
  return ok(with_id(hid, h))

elseif OP == 'release' then
  -- ARGV 4 hold id, 5 "" (the holder) or the order id (saga compensation).
  local hid, order = ARGV[4], ARGV[5]
  expire_due(nil)
  if order == '' then
    local h, why, gone = active(hid)
    if not h then return err(why, gone) end
    if h.pinned then return err('HoldPinned') end
  else
    local h = get_hold(hid)
    if not h or h.pinned ~= order then return ok('untouched') end
  end
  end_hold(hid, {k = 'released'})
  return ok('released')

elseif OP == 'pin' then
  -- ARGV 4 hold id, 5 order id, 6 checkout_ms.
  local hid, order = ARGV[4], ARGV[5]
  expire_due(nil)
  local h, why, gone = active(hid)
  if not h then return err(why, gone) end
  if h.pinned then
    if h.pinned ~= order then return err('HoldPinned') end
    return ok(with_id(hid, h))
  end
  h.expires = fmt(math.max(tonumber(h.expires), NOW + tonumber(ARGV[6])))
  h.pinned = order
  put_hold(hid, h)
  return ok(with_id(hid, h))

elseif OP == 'confirm' then
  -- ARGV 4 hold id, 5 order id, 6 traceparent (may be empty). The fence:
  -- only the hold pinned to this order, still active after expiry, becomes SOLD.
  local hid, order = ARGV[4], ARGV[5]
  local sold = 'S'
  if ARGV[6] and ARGV[6] ~= '' then sold = 'S@' .. ARGV[6] end
  expire_due(nil)
  local h = get_hold(hid)
  if h then
    if h.pinned ~= order then return ok({rejected = 'HoldNotPinned'}) end
    for _, s in ipairs(h.seats) do set_seat(s, 'S:' .. order, sold) end
    end_hold(hid, {k = 'confirmed', order = order, seats = h.seats})
    return ok({confirmed = h.seats})
  end
  local raw = redis.call('HGET', K_TOMBS, hid)
  if not raw then return ok({rejected = 'HoldReleased'}) end
  local t = cjson.decode(raw)
  if t.k == 'confirmed' and t.order == order then return ok({confirmed = t.seats}) end
  if t.k == 'expired' then return ok({rejected = 'HoldExpired'}) end
  if t.k == 'confirmed' then return ok({rejected = 'HoldNotPinned'}) end
  return ok({rejected = 'HoldReleased'})

elseif OP == 'return' then
  -- ARGV 4 order id, 5 JSON seats, 6 JSON customer (or null). The fenced
  -- return of a cancelled order's seats: only a seat still sold to this
  -- order becomes AVAILABLE (a seat named twice, once). Answers the seats
  -- returned.
  if not exists() then return err('UnknownEvent') end
  local sold = 'S:' .. ARGV[4]
  local seats = cjson.decode(ARGV[5])
  local customer = cjson.decode(ARGV[6])
  expire_due(nil)
  local back = {}
  for _, s in ipairs(seats) do
    if redis.call('HGET', K_STATE, s) == sold then
      set_seat(s, 'A', 'A')
      back[#back + 1] = s
    end
  end
  if customer ~= cjson.null and #back > 0 then
    redis.call('HINCRBY', K_CUST, 's:' .. customer, -#back)
  end
  return ok({returned = back})

elseif OP == 'sweep' then
  -- ARGV 4 max holds to expire, 5 tombstone_ms. Returns how many expired
  -- and which tombstones were forgotten (the adapter drops their index).
  local n = expire_due(tonumber(ARGV[4]))
  local old = redis.call('ZRANGEBYSCORE', K_TOMBZ, '-inf', fmt(NOW - tonumber(ARGV[5])),
                         'LIMIT', 0, 1000)
  for _, hid in ipairs(old) do
    redis.call('HDEL', K_TOMBS, hid)
    redis.call('ZREM', K_TOMBZ, hid)
  end
  return ok({expired = fmt(n), forgotten = old})

elseif OP == 'map' then
  if not exists() then return err('UnknownEvent') end
  return ok({version = redis.call('HGET', K_META, 'version'),
             state = redis.call('HGETALL', K_STATE)})

elseif OP == 'avail' then
  if not exists() then return err('UnknownEvent') end
  local m = redis.call('HMGET', K_META, 'version', 'avail')
  return ok({version = m[1], avail = m[2]})

elseif OP == 'since' then
  -- ARGV 4 version, 5 limit. Versions in the history are consecutive, so
  -- the wanted slice is found by arithmetic, not by scanning.
  if not exists() then return err('UnknownEvent') end
  local current = tonumber(redis.call('HGET', K_META, 'version'))
  local from, limit = tonumber(ARGV[4]), tonumber(ARGV[5])
  local head = redis.call('LINDEX', K_HIST, 0)
  local oldest = current + 1
  if head then oldest = tonumber(string.match(head, '^(%d+)|')) end
  local hist = {}
  if from <= current and from + 1 >= oldest and limit > 0 then
    local start = from + 1 - oldest
    hist = redis.call('LRANGE', K_HIST, start, start + limit - 1)
  end
  return ok({version = fmt(current), oldest = fmt(oldest), hist = hist})
end
return err('BadOp')
