-- The change-log entries after a version, oldest first, at most `limit` of them.
-- ARGV: [1] prefix, [2] version already seen, [3] limit
-- Reply: {live-state generation ("" before one is named), current version,
--         oldest version the log still holds (0: empty), entry JSON...}.
local since, limit = tonumber(ARGV[2]), tonumber(ARGV[3])
local version = tonumber(redis.call('GET', K_QVER) or '0')
local out = { redis.call('GET', P .. 'epoch') or '', version, 0 }
if version > since then
  local oldest = redis.call('ZRANGE', K_QLOG, 0, 0, 'WITHSCORES')
  if oldest[2] then out[3] = tonumber(oldest[2]) end
  for _, entry in ipairs(redis.call('ZRANGEBYSCORE', K_QLOG, '(' .. ARGV[2], '+inf',
      'LIMIT', 0, limit)) do
    out[#out + 1] = entry
  end
end
return out
