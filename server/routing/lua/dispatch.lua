-- Promote due skill- and dialect-step calls, then reserve call/specialist pairs:
-- each round takes the best-ranked head among the skill queues that have an idle
-- specialist in their pool, the dialect queues that have an idle fluent
-- specialist and the "any" queue (if anyone is idle), and offers it to the
-- longest-idle specialist of that pool. Within one run pools and queues only
-- lose members, so each queue's head is read once, and again only after its call
-- is offered, and a queue or pool found empty is not looked at again: a round
-- costs one ZCARD per pool still in the running, not a head read per queue.
-- ARGV: [1] prefix, [2] now, [3] lease end (now + lease), [4] offer id prefix
--       (random, 16 hex), [5] most offers to make in this run (bounds the time
--       Redis is blocked; the caller runs the script again if the bound was hit)
-- Reply: flat list of offers made, six fields each
--        (offer id, call id, specialist id, step, created, expires).
local now, expires, token, limit = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local dialects, skill_keys = promote_due(now)
local out = {}
local made = 0

-- Head of an unoffered queue as {member, score, seq}, or nil.
local function head(key)
  local h = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if not h[1] then return nil end
  return { h[1], tonumber(h[2]), member_seq(h[1]) }
end

local function better(a, b)
  if b == nil then return true end
  if a[2] ~= b[2] then return a[2] < b[2] end
  return a[3] < b[3]
end

-- The queues still in the running, as {queue key, pool key, head}.
local candidates = {}
local function consider(queue, pool)
  if redis.call('ZCARD', pool) > 0 then
    local h = head(queue)
    if h then candidates[#candidates + 1] = { queue, pool, h } end
  end
end
-- Pools first: usually few specialists are idle, so most queues are skipped
-- without reading their heads.
for _, k in ipairs(skill_keys) do consider(sq_key(k), sidle_key(k)) end
for _, d in ipairs(dialects) do consider(dq_key(d), idle_key(d)) end
consider(K_ANYQ, K_IDLE)

while made < limit do
  local best, best_at = nil, nil
  local live = {}
  for _, cand in ipairs(candidates) do
    if redis.call('ZCARD', cand[2]) > 0 then
      live[#live + 1] = cand
      if better(cand[3], best) then best, best_at = cand[3], #live end
    end
  end
  candidates = live
  if not best then break end
  local best_pool = candidates[best_at][2]

  local c = load_call(member_call_id(best[1]))
  local s = load_spec(redis.call('ZRANGE', best_pool, 0, 0)[1])
  local offer_id = token .. string.format('%016x', redis.call('INCR', K_OFFERSEQ))
  redis.call('HSET', offer_key(offer_id), 'call', c.id, 'spec', s.id, 'step', c.step,
    'created', now, 'expires', expires)
  redis.call('ZADD', K_OFFERS, expires, offer_id)
  unqueue_unoffered(c)
  redis.call('HSET', call_key(c.id), 'offer', offer_id)
  redis.call('HSET', K_OFFERED, c.id, offer_id)
  remove_idle(s)
  redis.call('HSET', spec_key(s.id), 'offer', offer_id)
  for _, field in ipairs({ offer_id, c.id, s.id, c.step, now, expires }) do
    out[#out + 1] = field
  end
  made = made + 1
  -- Only the queue the call left has a new head.
  local taken = candidates[best_at]
  taken[3] = head(taken[1])
  if not taken[3] then table.remove(candidates, best_at) end
end
return out
