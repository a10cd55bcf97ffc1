-- Everything waiting (in queue order) and everyone registered (in registration
-- order), at one instant. Promotes due skill- and dialect-step calls first, as
-- dispatch would.
-- Reads in bulk (a handful of commands plus one per specialist, not one per call)
-- and answers with one JSON document, which is far cheaper for the client to
-- parse than a reply of tens of thousands of elements.
-- ARGV: [1] prefix, [2] now
-- Reply: JSON {"order": [member...], "info": [call id, info JSON, ...],
--              "dialect_step": [call id...], "skill_step": [call id...],
--              "offered": [call id, offer id, ...],
--              "specs": [id, desired, connected, offer, call, wrap, misses, fluent,
--                        intents, ...]}
-- (cjson writes an empty array as {}.)
local dialects, skill_keys = promote_due(ARGV[2])
local dialect_step = {}
for _, d in ipairs(dialects) do
  for _, id in ipairs(redis.call('ZRANGE', promo_key(d), 0, -1)) do
    dialect_step[#dialect_step + 1] = id
  end
end
local skill_step = {}
for _, k in ipairs(skill_keys) do
  for _, id in ipairs(redis.call('ZRANGE', spromo_key(k), 0, -1)) do
    skill_step[#skill_step + 1] = id
  end
end
local specs = {}
for _, id in ipairs(redis.call('ZRANGE', K_SPECS, 0, -1)) do
  local v = redis.call('HMGET', spec_key(id), 'desired', 'connected', 'offer', 'call',
    'wrap', 'misses', 'fluent', 'intents')
  specs[#specs + 1] = id
  for i = 1, 7 do specs[#specs + 1] = v[i] end
  specs[#specs + 1] = v[8] or '[]'
end
return cjson.encode({
  order = redis.call('ZRANGE', K_ORDER, 0, -1),
  info = redis.call('HGETALL', K_CALLINFO),
  dialect_step = dialect_step,
  skill_step = skill_step,
  offered = redis.call('HGETALL', K_OFFERED),
  specs = specs,
})
