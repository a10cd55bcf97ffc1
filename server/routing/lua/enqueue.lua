-- Add a waiting call (idempotent by call id); reply with its 1-based position.
-- ARGV: [1] prefix, [2] call id, [3] customer id, [4] dialect ("" = none),
--       [5] priority, [6] enqueued_at, [7] rank key, [8] dialect deadline, [9] now,
--       [10] JSON [customer id, dialect or null, priority, enqueued_at] for snapshots
local id, dialect, deadline, now = ARGV[2], ARGV[4], ARGV[8], ARGV[9]
local key = call_key(id)
local member = redis.call('HGET', key, 'member')
if not member then
  member = string.format('%016d', redis.call('INCR', K_SEQ)) .. ':' .. id
  -- The ladder step at arrival: the dialect step only while someone fluent in it
  -- is logged in and the deadline has not passed.
  local step = 'any'
  if dialect ~= '' and tonumber(redis.call('HGET', K_LOGGEDIN, dialect) or '0') > 0
      and tonumber(now) < tonumber(deadline) then
    step = 'dialect'
  end
  redis.call('HSET', key, 'customer', ARGV[3], 'dialect', dialect, 'priority', ARGV[5],
    'enqueued_at', ARGV[6], 'rank', ARGV[7], 'deadline', deadline, 'member', member,
    'step', step, 'offer', '')
  redis.call('ZADD', K_ORDER, ARGV[7], member)
  redis.call('HSET', K_CALLINFO, id, ARGV[10])
  queue_unoffered({ id = id, dialect = dialect, rank = ARGV[7], deadline = deadline,
    member = member, step = step })
end
return redis.call('ZRANK', K_ORDER, member) + 1
