-- Record the presence the specialist asked for. While reserved, busy or in
-- wrap-up it takes effect when they are free again. Choosing "available" after
-- "away" resets the count of consecutive misses.
-- ARGV: [1] prefix, [2] specialist id, [3] desired ("available" | "away"), [4] now
-- Reply: the resulting state, or "" for an unknown specialist.
local desired = ARGV[3]
local s = load_spec(ARGV[2])
if not s then return '' end
if desired == 'available' and s.desired ~= 'available' then
  redis.call('HSET', spec_key(s.id), 'misses', '0')
end
s.desired = desired
redis.call('HSET', spec_key(s.id), 'desired', desired)
sync_idle(s, ARGV[4])
return spec_state(s)
