-- fleetRegister(registry, events; imei, value, maxlen, ...event) -> the previous registry value
-- ('' if none). Points the registry at this instance and appends the `connected` event (its
-- fields as encoded by the contract's ConnectionEvent message), in one step; the previous value
-- says whether a live session elsewhere was taken over.
local previous = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', unpack(ARGV, 4))
return previous or ''
