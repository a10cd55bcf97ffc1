-- Create or update what routing knows of a specialist (idempotent).
-- ARGV: [1] prefix, [2] specialist id, [3] fluent dialects (JSON array),
--       [4] profile (JSON)
local id, fluent_json, profile = ARGV[2], ARGV[3], ARGV[4]
local s = load_spec(id)
if not s then
  redis.call('HSET', spec_key(id), 'desired', 'away', 'connected', '0', 'idle_since', '0',
    'misses', '0', 'offer', '', 'call', '', 'wrap', '0', 'idle', '0',
    'fluent', fluent_json, 'profile', profile)
  redis.call('ZADD', K_SPECS, redis.call('INCR', K_REGSEQ), id)
  return 1
end
local was_idle = s.idle == '1'
remove_idle(s)
local old = s.fluent
local new = cjson.decode(fluent_json)
if s.connected == '1' then
  for _, d in ipairs(old) do redis.call('HINCRBY', K_LOGGEDIN, d, -1) end
  for _, d in ipairs(new) do redis.call('HINCRBY', K_LOGGEDIN, d, 1) end
end
s.fluent = new
redis.call('HSET', spec_key(id), 'fluent', fluent_json, 'profile', profile)
if was_idle then add_idle(s) end
-- A dialect this specialist no longer speaks may have lost its last speaker.
if s.connected == '1' then
  for _, d in ipairs(old) do
    if tonumber(redis.call('HGET', K_LOGGEDIN, d) or '0') <= 0 then promote_dialect(d) end
  end
end
return 0
