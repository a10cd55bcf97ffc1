-- Log out desks whose connection belongs to a node that stopped renewing its
-- liveness key (killed, or cut off): their offers go back to the queue at once,
-- without a miss, instead of waiting out the presence TTL while every lease
-- made to them runs out unseen. The connection's name is kept, so a node that
-- was only slow logs its desks back in with their next heartbeat.
-- ARGV: [1] prefix, [2] now
-- Reply: flat list of withdrawn offers, six fields each.
local out = {}
-- node -> its liveness key exists; each node is looked up once per run (a node
-- holds many desks).
local alive = {}
for _, id in ipairs(redis.call('ZRANGE', K_ONLINE, 0, -1)) do
  local conn = redis.call('HGET', spec_key(id), 'conn') or ''
  local sep = string.find(conn, '/', 1, true)
  if sep then
    local node = string.sub(conn, 1, sep - 1)
    if alive[node] == nil then
      alive[node] = redis.call('EXISTS', P .. 'node:' .. node) == 1
    end
    if not alive[node] then
      local s = load_spec(id)
      if s and s.connected == '1' then
        local o = disconnect_spec(s)
        if o then
          for _, field in ipairs(offer_reply(o)) do out[#out + 1] = field end
        end
      end
    end
  end
end
return out
