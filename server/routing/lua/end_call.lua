-- The held call ended: the specialist moves to wrap-up.
-- ARGV: [1] prefix, [2] specialist id
-- Reply: 1, or 0 for an unknown specialist.
local key = spec_key(ARGV[2])
local call = redis.call('HGET', key, 'call')
if not call then return 0 end
if call ~= '' then redis.call('HSET', key, 'wrap', '1') end
return 1
