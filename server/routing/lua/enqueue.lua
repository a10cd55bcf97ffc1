-- Add a waiting call (idempotent by call id); reply with the change-log version
-- and its standing (its 1-based position first), read in the same atomic step.
-- ARGV: [1] prefix, [2] call id, [3] customer id, [4] dialect ("" = none),
--       [5] priority, [6] enqueued_at, [7] rank key, [8] dialect deadline, [9] now,
--       [10] JSON [customer id, dialect or null, priority, enqueued_at, intent or null]
--       for snapshots, [11] skill pool ("" = no skill step), [12] skill deadline
local id, dialect, deadline, now = ARGV[2], ARGV[4], ARGV[8], ARGV[9]
local skey, sdeadline = ARGV[11] or '', ARGV[12] or ''
local key = call_key(id)
local member = redis.call('HGET', key, 'member')
if not member then
  member = string.format('%016d', redis.call('INCR', K_SEQ)) .. ':' .. id
  -- The ladder step at arrival (same rule as model.ladder_step): the skill step
  -- while someone in its pool is logged in and its deadline has not passed, else
  -- the dialect step while someone fluent in it is logged in and the deadline has
  -- not passed, else "any".
  local step = 'any'
  if skey ~= '' and tonumber(redis.call('HGET', K_LOGGEDIN_SKILL, skey) or '0') > 0
      and tonumber(now) < tonumber(sdeadline) then
    step = 'skill'
  elseif dialect ~= '' and tonumber(redis.call('HGET', K_LOGGEDIN, dialect) or '0') > 0
      and tonumber(now) < tonumber(deadline) then
    step = 'dialect'
  end
  redis.call('HSET', key, 'customer', ARGV[3], 'dialect', dialect, 'priority', ARGV[5],
    'enqueued_at', ARGV[6], 'rank', ARGV[7], 'deadline', deadline, 'member', member,
    'step', step, 'offer', '', 'skey', skey, 'sdeadline', sdeadline)
  redis.call('ZADD', K_ORDER, ARGV[7], member)
  redis.call('HSET', K_CALLINFO, id, ARGV[10])
  local c = { id = id, dialect = dialect, rank = ARGV[7], deadline = deadline,
    member = member, step = step, skey = skey, sdeadline = sdeadline, customer = ARGV[3] }
  queue_unoffered(c)
  place(c)
  log_change('add', c)
else
  -- Queued by a version that kept no standing sets (an upgrade): the start-up's
  -- re-enqueue of every waiting call places it now, and says so in the log.
  local c = load_call(id)
  if not redis.call('ZSCORE', step_set(c), c.member) then
    place(c)
    log_change('add', c)
  end
end
local reply = standing_reply(load_call(id))
table.insert(reply, 1, tonumber(redis.call('GET', K_QVER) or '0'))
return reply
