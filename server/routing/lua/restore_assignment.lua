-- Routing lost what a specialist holds (Redis came back empty): SQL says they hold
-- this call, in conversation or in wrap-up. Idempotent; a specialist who holds
-- or is offered something else is left alone (the repair pass looks again).
-- ARGV: [1] prefix, [2] specialist id, [3] call id, [4] "1" if in wrap-up
-- Reply: 1 if the call was restored, 0 otherwise.
local s = load_spec(ARGV[2])
if not s then return 0 end
if s.call == ARGV[3] then
  if ARGV[4] == '1' then redis.call('HSET', spec_key(s.id), 'wrap', '1') end
  return 0
end
if s.call ~= '' or s.offer ~= '' then return 0 end
remove_idle(s)
redis.call('HSET', spec_key(s.id), 'call', ARGV[3], 'wrap', ARGV[4])
return 1
