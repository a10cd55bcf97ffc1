-- Withdraw offers whose lease ended at or before `now`. Each counts as a miss;
-- `max misses` in a row puts the specialist away.
-- ARGV: [1] prefix, [2] now, [3] max consecutive misses
-- Reply: flat list, seven fields per expired offer: the offer's six fields, then
--        "1" if the specialist is now away, else "0".
local now, max_misses = ARGV[2], tonumber(ARGV[3])
local out = {}
for _, offer_id in ipairs(redis.call('ZRANGEBYSCORE', K_OFFERS, '-inf', now)) do
  local o = load_offer(offer_id)
  local s = o and load_spec(o.spec)
  if not s or s.offer ~= offer_id then
    -- Not live any more (cannot happen while the invariants hold): drop it.
    redis.call('ZREM', K_OFFERS, offer_id)
    if o then redis.call('DEL', offer_key(offer_id)) end
  else
    withdraw_offer(s)
    local misses = redis.call('HINCRBY', spec_key(s.id), 'misses', 1)
    local away = '0'
    if misses >= max_misses then
      away = '1'
      s.desired = 'away'
      redis.call('HSET', spec_key(s.id), 'desired', 'away')
    end
    sync_idle(s, now)
    for _, field in ipairs(offer_reply(o)) do out[#out + 1] = field end
    out[#out + 1] = away
  end
end
return out
