-- Shared prelude of every routing script (prepended to each one).
--
-- KEYS: none. Every script derives its key names from the prefix in ARGV[1],
-- so the backend needs a standalone Redis (or a Sentinel-managed primary), not
-- Redis Cluster.
--
-- Numbers. Lua 5.1 turns numbers into strings with 14 significant digits, which
-- would round epoch timestamps. So every time and score is computed in Python,
-- passed in as a string, stored and returned as that same string, and only
-- `tonumber`-ed for comparisons; nothing here concatenates a number.
--
-- Layout (P = prefix):
--   P.."seq"              INCR: arrival sequence of calls (ties in rank key)
--   P.."order"            zset: every waiting call, offered or not; score = rank key,
--                         member = 16-digit arrival sequence..":"..call id
--   P.."q:any"            zset: unoffered calls on the "any" step (same scores/members)
--   P.."q:d:"..d          zset: unoffered calls on the "dialect" step for dialect d
--   P.."promo:"..d        zset: call ids on the "dialect" step of d (offered or not),
--                         score = dialect deadline
--   P.."dialects"         set: dialects that ever had a dialect-step call
--   P.."q:s:"..k          zset: unoffered calls on the "skill" step of skill pool k
--                         ("<dialect or empty>|<intent>", see server/routing/intents.py)
--   P.."promo:s:"..k      zset: call ids on the "skill" step of pool k (offered or not),
--                         score = skill deadline
--   P.."skillkeys"        set: skill pools that ever had a skill-step call
--   P.."idle"             zset: idle available specialists, score = idle since
--   P.."idle:d:"..d       zset: the same, only those fluent in d
--   P.."idle:s:"..k       zset: the same, only those in skill pool k
--   P.."loggedin"         hash: dialect -> number of connected specialists fluent in it
--   P.."loggedin:s"       hash: skill pool -> number of connected specialists in it
--   P.."online"           zset: connected specialists, score = last seen
--   P.."specs"            zset: every registered specialist, score = registration order
--   P.."regseq"           INCR: registration order
--   P.."offers"           zset: live offer ids, score = lease end
--   P.."offerseq"         INCR: unique part of offer ids
--   P.."call:"..id        hash: customer dialect priority enqueued_at rank deadline
--                         member step offer skey sdeadline (skill pool, skill deadline)
--   P.."callinfo"         hash: call id -> JSON [customer, dialect, priority, enqueued_at,
--                         intent]
--                         of every waiting call (read whole by snapshot)
--   P.."offered"          hash: call id -> offer id, for every offered waiting call
--   P.."spec:"..id        hash: desired connected idle_since misses offer call wrap
--                         idle fluent(JSON array) skeys(JSON array: skill pools)
--                         intents(JSON array) profile(JSON)
--   P.."offer:"..id       hash: call spec step created expires
--   P.."w:any"            zset: every waiting call on the "any" step, offered or not
--                         (same scores/members as "order"): standings count from it
--   P.."w:d:"..d          zset: the same, on the "dialect" step of d
--   P.."w:s:"..k          zset: the same, on the "skill" step of pool k
--   P.."qver"             INCR: version of the change log, one per change
--   P.."qlog"             zset: the last changes, score = version, member = JSON
--                         [version, kind, rank, member, step, old step, dialect,
--                         skill pool, customer]; kind "add" | "leave" | "step"

local P = ARGV[1]
local K_SEQ = P .. 'seq'
local K_ORDER = P .. 'order'
local K_ANYQ = P .. 'q:any'
local K_DIALECTS = P .. 'dialects'
local K_IDLE = P .. 'idle'
local K_LOGGEDIN = P .. 'loggedin'
local K_ONLINE = P .. 'online'
local K_SPECS = P .. 'specs'
local K_REGSEQ = P .. 'regseq'
local K_OFFERS = P .. 'offers'
local K_OFFERSEQ = P .. 'offerseq'
local K_CALLINFO = P .. 'callinfo'
local K_OFFERED = P .. 'offered'
local K_SKILLKEYS = P .. 'skillkeys'
local K_LOGGEDIN_SKILL = P .. 'loggedin:s'
local K_WANY = P .. 'w:any'
local K_QVER = P .. 'qver'
local K_QLOG = P .. 'qlog'
-- How many changes the log keeps; a node further behind asks for standings again.
local LOG_LENGTH = 4096

local function dq_key(d) return P .. 'q:d:' .. d end
local function promo_key(d) return P .. 'promo:' .. d end
local function idle_key(d) return P .. 'idle:d:' .. d end
local function sq_key(k) return P .. 'q:s:' .. k end
local function spromo_key(k) return P .. 'promo:s:' .. k end
local function sidle_key(k) return P .. 'idle:s:' .. k end
local function call_key(id) return P .. 'call:' .. id end
local function spec_key(id) return P .. 'spec:' .. id end
local function offer_key(id) return P .. 'offer:' .. id end
local function wd_key(d) return P .. 'w:d:' .. d end
local function ws_key(k) return P .. 'w:s:' .. k end

-- Members of the rank zsets are "%016d:<call id>": the fixed-width arrival number
-- makes equal rank keys order by arrival, and the call id needs no lookup.
local function member_call_id(member) return string.sub(member, 18) end
local function member_seq(member) return tonumber(string.sub(member, 1, 16)) end

-- -- loading ------------------------------------------------------------------

local function load_call(id)
  local v = redis.call('HMGET', call_key(id), 'dialect', 'rank', 'deadline', 'member',
    'step', 'offer', 'skey', 'sdeadline', 'customer')
  if not v[4] then return nil end
  return { id = id, dialect = v[1], rank = v[2], deadline = v[3], member = v[4],
    step = v[5], offer = v[6], skey = v[7] or '', sdeadline = v[8] or '',
    customer = v[9] or '' }
end

local function load_spec(id)
  local v = redis.call('HMGET', spec_key(id), 'desired', 'connected', 'idle_since',
    'misses', 'offer', 'call', 'wrap', 'idle', 'fluent', 'skeys')
  if not v[1] then return nil end
  -- A specialist registered before skills were routed has no skill pools.
  return { id = id, desired = v[1], connected = v[2], idle_since = v[3],
    misses = tonumber(v[4]), offer = v[5], call = v[6], wrap = v[7], idle = v[8],
    fluent = cjson.decode(v[9]), skeys = cjson.decode(v[10] or '[]') }
end

local function load_offer(id)
  local v = redis.call('HMGET', offer_key(id), 'call', 'spec', 'step', 'created', 'expires')
  if not v[1] then return nil end
  return { id = id, call = v[1], spec = v[2], step = v[3], created = v[4], expires = v[5] }
end

-- The wire form of an offer, as the Python side parses it.
local function offer_reply(o)
  return { o.id, o.call, o.spec, o.step, o.created, o.expires }
end

-- Same rule as the in-process backend's `_Specialist.state`.
local function spec_state(s)
  if s.call ~= '' then
    if s.wrap == '1' then return 'wrap_up' end
    return 'busy'
  end
  if s.connected ~= '1' then return 'offline' end
  if s.offer ~= '' then return 'reserved' end
  return s.desired
end

-- -- idle order ---------------------------------------------------------------

local function add_idle(s)
  s.idle = '1'
  redis.call('HSET', spec_key(s.id), 'idle', '1')
  redis.call('ZADD', K_IDLE, s.idle_since, s.id)
  for _, d in ipairs(s.fluent) do
    redis.call('ZADD', idle_key(d), s.idle_since, s.id)
  end
  for _, k in ipairs(s.skeys) do
    redis.call('ZADD', sidle_key(k), s.idle_since, s.id)
  end
end

local function remove_idle(s)
  if s.idle ~= '1' then return end
  s.idle = '0'
  redis.call('HSET', spec_key(s.id), 'idle', '0')
  redis.call('ZREM', K_IDLE, s.id)
  for _, d in ipairs(s.fluent) do
    redis.call('ZREM', idle_key(d), s.id)
  end
  for _, k in ipairs(s.skeys) do
    redis.call('ZREM', sidle_key(k), s.id)
  end
end

-- Keep the idle sets in step with the specialist's state: idle since `now` if they
-- just became available, out of the sets otherwise.
local function sync_idle(s, now)
  local available = spec_state(s) == 'available'
  if available and s.idle ~= '1' then
    s.idle_since = now
    redis.call('HSET', spec_key(s.id), 'idle_since', now)
    add_idle(s)
  elseif not available and s.idle == '1' then
    remove_idle(s)
  end
end

-- -- waiting calls ----------------------------------------------------------------

-- The promotion set of the call's current step (offered or not).
local function watch_deadline(c)
  if c.step == 'skill' then
    redis.call('ZADD', spromo_key(c.skey), c.sdeadline, c.id)
    redis.call('SADD', K_SKILLKEYS, c.skey)
  elseif c.step == 'dialect' then
    redis.call('ZADD', promo_key(c.dialect), c.deadline, c.id)
    redis.call('SADD', K_DIALECTS, c.dialect)
  end
end

local function unwatch_deadline(c)
  if c.step == 'skill' then
    redis.call('ZREM', spromo_key(c.skey), c.id)
  elseif c.step == 'dialect' then
    redis.call('ZREM', promo_key(c.dialect), c.id)
  end
end

local function queue_unoffered(c)
  if c.step == 'skill' then
    redis.call('ZADD', sq_key(c.skey), c.rank, c.member)
  elseif c.step == 'dialect' then
    redis.call('ZADD', dq_key(c.dialect), c.rank, c.member)
  else
    redis.call('ZADD', K_ANYQ, c.rank, c.member)
  end
  watch_deadline(c)
end

local function unqueue_unoffered(c)
  if c.step == 'skill' then
    redis.call('ZREM', sq_key(c.skey), c.member)
  elseif c.step == 'dialect' then
    redis.call('ZREM', dq_key(c.dialect), c.member)
  else
    redis.call('ZREM', K_ANYQ, c.member)
  end
end

-- -- standings and the change log ---------------------------------------------------

-- The set of every waiting call on the call's step (and pool), offered or not.
local function step_set(c)
  if c.step == 'skill' then return ws_key(c.skey) end
  if c.step == 'dialect' then return wd_key(c.dialect) end
  return K_WANY
end

local function place(c) redis.call('ZADD', step_set(c), c.rank, c.member) end
local function unplace(c) redis.call('ZREM', step_set(c), c.member) end

-- One entry of the change log (see the layout above); `old` only for "step".
local function log_change(kind, c, old)
  local version = redis.call('INCR', K_QVER)
  redis.call('ZADD', K_QLOG, version, cjson.encode({ tostring(version), kind, c.rank,
    c.member, c.step, old or '', c.dialect, c.skey, c.customer }))
  if version % 64 == 0 then
    redis.call('ZREMRANGEBYSCORE', K_QLOG, '-inf', tostring(version - LOG_LENGTH))
  end
end

-- Members of `key` ranked before (score, member): the members are fixed-width
-- arrival numbers first, so equal scores order by arrival, as in ZRANK.
local function count_before(key, score, member)
  local n = redis.call('ZCOUNT', key, '-inf', '(' .. score)
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', key, score, score)) do
    if m < member then n = n + 1 end
  end
  return n
end

-- A waiting call's standing, as the Python side parses it (eleven fields).
local function standing_reply(c)
  local rank = redis.call('ZRANK', K_ORDER, c.member)
  local dialect, skill = 0, 0
  if c.dialect ~= '' then dialect = count_before(wd_key(c.dialect), c.rank, c.member) end
  if c.skey ~= '' then skill = count_before(ws_key(c.skey), c.rank, c.member) end
  return { c.id, c.customer, c.rank, c.member, c.step, c.dialect, c.skey, rank + 1,
    count_before(K_WANY, c.rank, c.member), dialect, skill }
end

-- Put a call on a later ladder step (offered or not).
local function move(c, step)
  if c.step == step then return end
  if c.offer == '' then unqueue_unoffered(c) end
  unwatch_deadline(c)
  unplace(c)
  local old = c.step
  c.step = step
  redis.call('HSET', call_key(c.id), 'step', step)
  place(c)
  log_change('step', c, old)
  if c.offer == '' then queue_unoffered(c) else watch_deadline(c) end
end

-- Where a call goes when its skill step ends; the dialect step's own deadline is
-- applied by the dialect pass of promote_due (same rule as model.step_after_skill).
local function step_after_skill(c)
  if c.dialect ~= '' and tonumber(redis.call('HGET', K_LOGGEDIN, c.dialect) or '0') > 0 then
    return 'dialect'
  end
  return 'any'
end

local function promote_ids(d, ids)
  for _, id in ipairs(ids) do
    local c = load_call(id)
    if c and c.step == 'dialect' then
      move(c, 'any')
    else
      redis.call('ZREM', promo_key(d), id)
    end
  end
end

local function promote_skill_ids(k, ids)
  for _, id in ipairs(ids) do
    local c = load_call(id)
    if c and c.step == 'skill' and c.skey == k then
      move(c, step_after_skill(c))
    else
      redis.call('ZREM', spromo_key(k), id)
    end
  end
end

-- Every skill- or dialect-step call whose deadline is at or before `now` moves on.
-- Skill steps first: a call they put on the dialect step past its deadline moves
-- on in the same pass. Returns the dialects and skill pools sets, read after the
-- passes (so they include any a promotion added).
local function promote_due(now)
  for _, k in ipairs(redis.call('SMEMBERS', K_SKILLKEYS)) do
    promote_skill_ids(k, redis.call('ZRANGEBYSCORE', spromo_key(k), '-inf', now))
  end
  local dialects = redis.call('SMEMBERS', K_DIALECTS)
  for _, d in ipairs(dialects) do
    promote_ids(d, redis.call('ZRANGEBYSCORE', promo_key(d), '-inf', now))
  end
  return dialects, redis.call('SMEMBERS', K_SKILLKEYS)
end

-- Nobody fluent in `d` is logged in any more: skip that step at once.
local function promote_dialect(d)
  promote_ids(d, redis.call('ZRANGE', promo_key(d), 0, -1))
end

-- Nobody in skill pool `k` is logged in any more: skip that step at once.
local function promote_skill(k)
  promote_skill_ids(k, redis.call('ZRANGE', spromo_key(k), 0, -1))
end

-- Skip the steps of the dialects and skill pools that lost their last
-- logged-in specialist.
local function promote_unserved(dialects, keys)
  for _, d in ipairs(dialects) do
    if tonumber(redis.call('HGET', K_LOGGEDIN, d) or '0') <= 0 then promote_dialect(d) end
  end
  for _, k in ipairs(keys) do
    if tonumber(redis.call('HGET', K_LOGGEDIN_SKILL, k) or '0') <= 0 then promote_skill(k) end
  end
end

-- Drop a waiting call from every structure (accepted or removed).
local function forget_call(c)
  redis.call('ZREM', K_ORDER, c.member)
  if c.offer == '' then unqueue_unoffered(c) end
  unwatch_deadline(c)
  unplace(c)
  log_change('leave', c)
  redis.call('DEL', call_key(c.id))
  redis.call('HDEL', K_CALLINFO, c.id)
  redis.call('HDEL', K_OFFERED, c.id)
end

-- -- offers -------------------------------------------------------------------------

local function delete_offer(o)
  redis.call('DEL', offer_key(o.id))
  redis.call('ZREM', K_OFFERS, o.id)
end

-- Return the specialist's offered call to its place in the queue; the caller
-- decides what becomes of the specialist. Returns the withdrawn offer.
local function withdraw_offer(s)
  local o = load_offer(s.offer)
  s.offer = ''
  redis.call('HSET', spec_key(s.id), 'offer', '')
  if not o then return nil end
  delete_offer(o)
  local c = load_call(o.call)
  if c then
    c.offer = ''
    redis.call('HSET', call_key(c.id), 'offer', '')
    redis.call('HDEL', K_OFFERED, c.id)
    queue_unoffered(c)
  end
  return o
end

-- The offer if it is live, made to `spec_id`, and its lease has not ended at `now`.
local function live_offer(offer_id, spec_id, now)
  local o = load_offer(offer_id)
  if not o or o.spec ~= spec_id or tonumber(o.expires) <= tonumber(now) then
    return nil
  end
  return o
end

-- -- presence --------------------------------------------------------------------------

-- The desk's socket is gone. Returns the offer this withdrew, if any.
local function disconnect_spec(s)
  s.connected = '0'
  redis.call('HSET', spec_key(s.id), 'connected', '0')
  redis.call('ZREM', K_ONLINE, s.id)
  remove_idle(s)
  for _, d in ipairs(s.fluent) do
    redis.call('HINCRBY', K_LOGGEDIN, d, -1)
  end
  for _, k in ipairs(s.skeys) do
    redis.call('HINCRBY', K_LOGGEDIN_SKILL, k, -1)
  end
  local withdrawn = nil
  if s.offer ~= '' then withdrawn = withdraw_offer(s) end
  promote_unserved(s.fluent, s.skeys)
  return withdrawn
end
