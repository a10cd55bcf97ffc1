-- The standings of the given calls that wait, and the change-log version they
-- reflect (all read in one atomic step).
-- ARGV: [1] prefix, [2...] call ids
-- Reply: {version, then eleven fields per waiting call (see standing_reply)}.
local out = { tonumber(redis.call('GET', K_QVER) or '0') }
for i = 2, #ARGV do
  local c = load_call(ARGV[i])
  if c then
    for _, field in ipairs(standing_reply(c)) do out[#out + 1] = field end
  end
end
return out
