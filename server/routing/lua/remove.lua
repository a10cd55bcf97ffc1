-- Take a waiting call out (cancelled, abandoned). The specialist of a withdrawn
-- offer is made available again; it is not a miss.
-- ARGV: [1] prefix, [2] call id, [3] now
-- Reply: {} if nothing was withdrawn, else the withdrawn offer
--        {offer id, call id, specialist id, step, created, expires}.
local c = load_call(ARGV[2])
if not c then return {} end
forget_call(c)
if c.offer == '' then return {} end
local o = load_offer(c.offer)
if not o then return {} end
delete_offer(o)
local s = load_spec(o.spec)
if s then
  s.offer = ''
  redis.call('HSET', spec_key(s.id), 'offer', '')
  sync_idle(s, ARGV[3])
end
return offer_reply(o)
