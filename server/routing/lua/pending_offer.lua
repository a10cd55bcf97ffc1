-- The specialist's live offer, if any.
-- ARGV: [1] prefix, [2] specialist id
-- Reply: {} or the offer's six fields.
local offer_id = redis.call('HGET', spec_key(ARGV[2]), 'offer')
if not offer_id or offer_id == '' then return {} end
local o = load_offer(offer_id)
if not o then return {} end
return offer_reply(o)
