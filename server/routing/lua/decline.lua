-- Give the offered call back in its place; not a miss. The specialist goes to the
-- back of the idle order.
-- ARGV: [1] prefix, [2] offer id, [3] specialist id, [4] now
-- Reply: the withdrawn offer (six fields), or {} if the offer is not live.
local now = ARGV[4]
local o = live_offer(ARGV[2], ARGV[3], now)
if not o then return {} end
local s = load_spec(o.spec)
if not s or s.offer ~= o.id then return {} end
withdraw_offer(s)
sync_idle(s, now)
return offer_reply(o)
