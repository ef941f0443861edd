-- fleetDeregister(registry, events; imei, instance, maxlen, ...event) -> 1 if the registry entry
-- was removed, 0 if it names another instance (the device reconnected elsewhere). The
-- `disconnected` event (ConnectionEvent fields) is recorded either way: this instance's socket
-- did close.
local removed = 0
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current and string.sub(current, 1, string.len(ARGV[2]) + 1) == ARGV[2] .. '|' then
  redis.call('HDEL', KEYS[1], ARGV[1])
  removed = 1
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', unpack(ARGV, 4))
return removed
