-- Turn a live offer into an assignment: the call leaves the queue.
-- ARGV: [1] prefix, [2] offer id, [3] specialist id, [4] now
-- Reply: the call id, or "" if the offer is not live, not this specialist's, or
--        its lease has ended.
local o = live_offer(ARGV[2], ARGV[3], ARGV[4])
if not o then return '' end
delete_offer(o)
local c = load_call(o.call)
if c then forget_call(c) end
redis.call('HSET', spec_key(o.spec), 'offer', '', 'call', o.call, 'wrap', '0', 'misses', '0')
return o.call
