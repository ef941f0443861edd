-- fleetDispatchCommand(registry; heartbeatKeyPrefix, outboundKeyPrefix, imei, maxlen, ...command)
--   -> {instance, entryId} when queued, nil when the device is not held by a live instance.
-- Reads the instance holding the IMEI, checks its heartbeat and XADDs the command (fields as
-- encoded by the contract's OutboundCommand message) to that instance's outbound stream, in one
-- step: a device moving between instances can never get a command queued on the one it just left.
local value = redis.call('HGET', KEYS[1], ARGV[3])
if not value then return nil end
local instance = string.match(value, '^[^|]*')
if redis.call('EXISTS', ARGV[1] .. instance) == 0 then return nil end
local id = redis.call('XADD', ARGV[2] .. instance, 'MAXLEN', '~', ARGV[4], '*', unpack(ARGV, 5))
return {instance, id}
