-- Which calls routing has: the waiting calls' members, the offered ones' ids, and
-- who holds which call; one read, for repair (no per-call documents).
-- ARGV: [1] prefix
-- Reply: JSON {"order": [member...], "offered": [call id...],
--              "holding": [specialist id, call id, ...]} (cjson writes [] as {}).
local holding = {}
for _, id in ipairs(redis.call('ZRANGE', K_SPECS, 0, -1)) do
  local call = redis.call('HGET', spec_key(id), 'call')
  if call and call ~= '' then
    holding[#holding + 1] = id
    holding[#holding + 1] = call
  end
end
return cjson.encode({
  order = redis.call('ZRANGE', K_ORDER, 0, -1),
  offered = redis.call('HKEYS', K_OFFERED),
  holding = holding,
})
