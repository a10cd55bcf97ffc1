-- Everything waiting (in queue order) and everyone registered (in registration
-- order), at one instant. Promotes due dialect-step calls first, as dispatch would.
-- ARGV: [1] prefix, [2] now
-- Reply: {calls, specialists}:
--   calls: flat, seven fields per call: id, customer, dialect, priority,
--          enqueued_at, step, offer id ("" if none)
--   specialists: flat, eight fields each: id, desired, connected, offer, call,
--                wrap, misses, fluent (JSON array)
promote_due(ARGV[2])
local calls = {}
for _, member in ipairs(redis.call('ZRANGE', K_ORDER, 0, -1)) do
  local id = member_call_id(member)
  local v = redis.call('HMGET', call_key(id), 'customer', 'dialect', 'priority',
    'enqueued_at', 'step', 'offer')
  calls[#calls + 1] = id
  for i = 1, 6 do calls[#calls + 1] = v[i] end
end
local specs = {}
for _, id in ipairs(redis.call('ZRANGE', K_SPECS, 0, -1)) do
  local v = redis.call('HMGET', spec_key(id), 'desired', 'connected', 'offer', 'call',
    'wrap', 'misses', 'fluent')
  specs[#specs + 1] = id
  for i = 1, 7 do specs[#specs + 1] = v[i] end
end
return { calls, specs }
