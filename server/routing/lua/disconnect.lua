-- The desk's socket is gone: no more offers; a dialect whose last logged-in speaker
-- this was skips its dialect step at once.
-- ARGV: [1] prefix, [2] specialist id, [3] now
-- Reply: {} or the withdrawn offer {offer id, call id, specialist id, step, created, expires}.
local s = load_spec(ARGV[2])
if not s or s.connected ~= '1' then return {} end
local o = disconnect_spec(s)
if not o then return {} end
return offer_reply(o)
