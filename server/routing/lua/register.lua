-- Create or update what routing knows of a specialist (idempotent).
-- ARGV: [1] prefix, [2] specialist id, [3] fluent dialects (JSON array),
--       [4] profile (JSON), [5] skill pools (JSON array), [6] covered intents
--       (JSON array)
local id, fluent_json, profile = ARGV[2], ARGV[3], ARGV[4]
local skeys_json, intents_json = ARGV[5] or '[]', ARGV[6] or '[]'
local s = load_spec(id)
if not s then
  redis.call('HSET', spec_key(id), 'desired', 'away', 'connected', '0', 'idle_since', '0',
    'misses', '0', 'offer', '', 'call', '', 'wrap', '0', 'idle', '0',
    'fluent', fluent_json, 'skeys', skeys_json, 'intents', intents_json, 'profile', profile)
  redis.call('ZADD', K_SPECS, redis.call('INCR', K_REGSEQ), id)
  return 1
end
local was_idle = s.idle == '1'
remove_idle(s)
local old, old_keys = s.fluent, s.skeys
local new, new_keys = cjson.decode(fluent_json), cjson.decode(skeys_json)
if s.connected == '1' then
  for _, d in ipairs(old) do redis.call('HINCRBY', K_LOGGEDIN, d, -1) end
  for _, d in ipairs(new) do redis.call('HINCRBY', K_LOGGEDIN, d, 1) end
  for _, k in ipairs(old_keys) do redis.call('HINCRBY', K_LOGGEDIN_SKILL, k, -1) end
  for _, k in ipairs(new_keys) do redis.call('HINCRBY', K_LOGGEDIN_SKILL, k, 1) end
end
s.fluent, s.skeys = new, new_keys
redis.call('HSET', spec_key(id), 'fluent', fluent_json, 'skeys', skeys_json,
  'intents', intents_json, 'profile', profile)
if was_idle then add_idle(s) end
-- A dialect or skill pool this specialist left may have lost its last member
-- (promote_unserved only acts on those now at zero).
if s.connected == '1' then promote_unserved(old, old_keys) end
return 0
