-- Disconnect specialists whose desks have not been seen since before the cutoff,
-- in registration order.
-- ARGV: [1] prefix, [2] cutoff (now - presence TTL), [3] now
-- Reply: flat list of withdrawn offers, six fields each.
local stale = redis.call('ZRANGEBYSCORE', K_ONLINE, '-inf', '(' .. ARGV[2])
local order = {}
for _, id in ipairs(stale) do
  order[id] = tonumber(redis.call('ZSCORE', K_SPECS, id) or '0')
end
table.sort(stale, function(a, b) return order[a] < order[b] end)
local out = {}
for _, id in ipairs(stale) do
  local s = load_spec(id)
  if s and s.connected == '1' then
    local o = disconnect_spec(s)
    if o then
      for _, field in ipairs(offer_reply(o)) do out[#out + 1] = field end
    end
  else
    redis.call('ZREM', K_ONLINE, id)
  end
end
return out
