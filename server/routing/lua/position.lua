-- 1-based place of a call among all waiting calls.
-- ARGV: [1] prefix, [2] call id
-- Reply: the position, or 0 if the call is not waiting.
local member = redis.call('HGET', call_key(ARGV[2]), 'member')
if not member then return 0 end
local rank = redis.call('ZRANK', K_ORDER, member)
if not rank then return 0 end
return rank + 1
