-- fleetReapInstance(registry; instance) -> number of entries removed. Clears every registry entry
-- that names the instance (used at start-up for entries a previous run with the same id left).
local prefix = ARGV[1] .. '|'
local n = 0
local cursor = '0'
repeat
  local page = redis.call('HSCAN', KEYS[1], cursor, 'COUNT', 1000)
  cursor = page[1]
  local kv = page[2]
  for i = 1, #kv, 2 do
    if string.sub(kv[i + 1], 1, string.len(prefix)) == prefix then
      redis.call('HDEL', KEYS[1], kv[i])
      n = n + 1
    end
  end
until cursor == '0'
return n
