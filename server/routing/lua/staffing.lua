-- Every registered specialist's state and pools, for the staffing counts
-- (O(specialists), independent of how many calls wait).
-- ARGV: [1] prefix
-- Reply: flat list, three fields per specialist: state, fluent dialects (JSON
--        array), covered intents (JSON array).
local out = {}
for _, id in ipairs(redis.call('ZRANGE', K_SPECS, 0, -1)) do
  local v = redis.call('HMGET', spec_key(id), 'desired', 'connected', 'offer', 'call',
    'wrap', 'fluent', 'intents')
  if v[1] then
    out[#out + 1] = spec_state({ desired = v[1], connected = v[2], offer = v[3],
      call = v[4], wrap = v[5] })
    out[#out + 1] = v[6]
    out[#out + 1] = v[7] or '[]'
  end
end
return out
