-- The desk's socket is up: the specialist is logged in through that connection.
-- ARGV: [1] prefix, [2] specialist id, [3] now, [4] connection id ("" = unnamed)
-- Reply: the resulting state, or "" for an unknown specialist.
local now = ARGV[3]
local s = load_spec(ARGV[2])
if not s then return '' end
-- Presence belongs to the newest connection: only its close logs the desk out.
redis.call('HSET', spec_key(s.id), 'conn', ARGV[4] or '')
redis.call('ZADD', K_ONLINE, now, s.id)
if s.connected ~= '1' then
  s.connected = '1'
  redis.call('HSET', spec_key(s.id), 'connected', '1')
  for _, d in ipairs(s.fluent) do redis.call('HINCRBY', K_LOGGEDIN, d, 1) end
  for _, k in ipairs(s.skeys) do redis.call('HINCRBY', K_LOGGEDIN_SKILL, k, 1) end
  sync_idle(s, now)
end
return spec_state(s)
