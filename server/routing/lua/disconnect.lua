-- The desk's socket is gone: no more offers; a dialect whose last logged-in speaker
-- this was skips its dialect step at once. A named connection that is no longer
-- the desk's live one (the desk came back through another socket or node) changes
-- nothing.
-- ARGV: [1] prefix, [2] specialist id, [3] now, [4] connection id ("" = any)
-- Reply: {} or the withdrawn offer {offer id, call id, specialist id, step, created, expires}.
local s = load_spec(ARGV[2])
if not s or s.connected ~= '1' then return {} end
local conn = ARGV[4] or ''
if conn ~= '' and (redis.call('HGET', spec_key(s.id), 'conn') or '') ~= conn then
  return {}
end
redis.call('HSET', spec_key(s.id), 'conn', '')
local o = disconnect_spec(s)
if not o then return {} end
return offer_reply(o)
