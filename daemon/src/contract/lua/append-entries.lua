-- fleetAppendEntries(numkeys, stream...; batch) -> one reply per entry, in order: its id, or the
-- error Redis gave that entry's XADD (the others are still appended, as separate XADDs would be).
-- `batch` is a MessagePack array with one array per entry: the index of its stream in KEYS, then
-- its fields as the contract's message definition encoded them (see appendEntriesArgs). The
-- fields travel as one argument so that the client encodes one bulk string per batch rather than
-- one per field.
local entries = cmsgpack.unpack(ARGV[1])
local out = {}
for i = 1, #entries do
  local e = entries[i]
  out[i] = redis.pcall('XADD', KEYS[e[1]], '*', unpack(e, 2))
end
return out
