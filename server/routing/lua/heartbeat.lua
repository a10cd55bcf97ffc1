-- The desk's socket is still alive. Membership of the online set is what
-- "connected" means, so a heartbeat never logs a desk back in by itself; it
-- reports "lost" when routing no longer knows the desk (Redis came back empty)
-- or reaped it while this very connection was still alive, and the caller then
-- registers and connects it again.
-- ARGV: [1] prefix, [2] specialist id, [3] now, [4] connection id ("" = unnamed)
-- Reply: "ok", "lost", "offline" (logged out; nothing to do) or "other" (the
--        desk's live connection is another one).
local s = load_spec(ARGV[2])
if not s then return 'lost' end
local conn = ARGV[4] or ''
local owner = redis.call('HGET', spec_key(s.id), 'conn') or ''
if conn ~= '' and owner ~= '' and owner ~= conn then return 'other' end
if s.connected == '1' then
  -- GT: last seen never goes backwards.
  redis.call('ZADD', K_ONLINE, 'GT', ARGV[3], s.id)
  return 'ok'
end
if conn ~= '' and owner == conn then return 'lost' end
return 'offline'
