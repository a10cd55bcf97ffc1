-- Wrap-up done: the specialist is available, or away if they asked for it.
-- ARGV: [1] prefix, [2] specialist id, [3] now
-- Reply: the resulting state, or "" for an unknown specialist.
local s = load_spec(ARGV[2])
if not s then return '' end
s.call = ''
s.wrap = '0'
redis.call('HSET', spec_key(s.id), 'call', '', 'wrap', '0')
sync_idle(s, ARGV[3])
return spec_state(s)
