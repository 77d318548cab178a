"""The Redis keys the replicas share, and the Lua scripts that change them atomically.

Every compare-and-set step is one script (redis-py's ``register_script``), so no
replica can act on a value another changed between its read and its write::

    orbit:ep:<folded name>       the lease: JSON {replica, fence, key, since}, with a TTL
    orbit:epinfo:<folded name>   the endpoint's info (GET /endpoints), same TTL
    orbit:fence:<folded name>    counter, +1 on every takeover: the fence
    orbit:endpoints              set of the folded names that may have a lease
    orbit:replica:<id>           pub/sub channel of one replica (forwarded requests, answers)
    orbit:events                 the stream of events; :bytes its size, :floor the newest
                                 id trimmed, :epoch random per stream (a lost stream shows)
    orbit:identities             the identity document (JSON); :version +1 per change;
                                 channel orbit:identities says a change, :ack replicas' replies
"""

from __future__ import annotations

__all__ = [
    "EPOCH_KEY",
    "EVENTS_BYTES_KEY",
    "EVENTS_FLOOR_KEY",
    "EVENTS_KEY",
    "EVENT_FIELDS",
    "FORWARD",
    "IDENTITIES_ACK",
    "IDENTITIES_CHANNEL",
    "IDENTITIES_KEY",
    "IDENTITIES_LOCK",
    "IDENTITIES_VERSION",
    "LIST",
    "NAMES_KEY",
    "NUMBERS_KEY",
    "RELEASE",
    "RENEW",
    "REPLICA_CHANNEL",
    "SEED_IDENTITIES",
    "TAKE",
    "XADD_BOUNDED",
    "fence_key",
    "info_key",
    "lease_key",
]

PREFIX = "orbit:"
NAMES_KEY = PREFIX + "endpoints"
REPLICA_CHANNEL = PREFIX + "replica:"
EVENTS_KEY = PREFIX + "events"
EVENTS_BYTES_KEY = EVENTS_KEY + ":bytes"
EVENTS_FLOOR_KEY = EVENTS_KEY + ":floor"
EPOCH_KEY = EVENTS_KEY + ":epoch"
#: per endpoint (folded name): "run number" of its last notification in the stream
NUMBERS_KEY = EVENTS_KEY + ":numbers"
IDENTITIES_KEY = PREFIX + "identities"
IDENTITIES_VERSION = IDENTITIES_KEY + ":version"
IDENTITIES_LOCK = IDENTITIES_KEY + ":lock"
IDENTITIES_CHANNEL = IDENTITIES_KEY
IDENTITIES_ACK = IDENTITIES_KEY + ":ack"
#: an event's fields in the stream, in the order XADD_BOUNDED takes them
EVENT_FIELDS = ("k", "e", "p", "t", "s", "o", "d")


def lease_key(folded: str) -> str:
    return f"{PREFIX}ep:{folded}"


def info_key(folded: str) -> str:
    return f"{PREFIX}epinfo:{folded}"


def fence_key(folded: str) -> str:
    return f"{PREFIX}fence:{folded}"


#: KEYS lease, fence, info, names; ARGV replica, key, since, ttl_ms, info, folded.
#: Takes the name unless another endpoint key holds it: {1, fence, previous replica}
#: or {0, 0, holding replica}.
TAKE = """
local v = redis.call('GET', KEYS[1])
local prev = ''
if v then
  local cur = cjson.decode(v)
  if cur['key'] ~= ARGV[2] then return {0, 0, cur['replica']} end
  prev = cur['replica']
end
local f = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], cjson.encode({replica=ARGV[1], fence=f, key=ARGV[2], since=tonumber(ARGV[3])}), 'PX', ARGV[4])
redis.call('SET', KEYS[3], ARGV[5], 'PX', ARGV[4])
redis.call('SADD', KEYS[4], ARGV[6])
return {1, f, prev}
"""

#: KEYS lease, fence, info, names; ARGV replica, fence, ttl_ms, key, since, info, folded.
#: Extends our lease: our fence; 0 when another replica holds the name now. A lease
#: that expired with nobody taking over (a long pause, Redis restarted) is taken
#: again with a new fence above ours.
RENEW = """
local v = redis.call('GET', KEYS[1])
if v then
  local cur = cjson.decode(v)
  if cur['replica'] == ARGV[1] and tostring(cur['fence']) == ARGV[2] then
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
    redis.call('PEXPIRE', KEYS[3], ARGV[3])
    return tonumber(ARGV[2])
  end
  return 0
end
local f = redis.call('INCR', KEYS[2])
if f <= tonumber(ARGV[2]) then
  f = tonumber(ARGV[2]) + 1
  redis.call('SET', KEYS[2], f)
end
redis.call('SET', KEYS[1], cjson.encode({replica=ARGV[1], fence=f, key=ARGV[4], since=tonumber(ARGV[5])}), 'PX', ARGV[3])
redis.call('SET', KEYS[3], ARGV[6], 'PX', ARGV[3])
redis.call('SADD', KEYS[4], ARGV[7])
return f
"""

#: KEYS lease, info, names; ARGV replica, fence, folded. Gives the name up if we hold it.
RELEASE = """
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local cur = cjson.decode(v)
if cur['replica'] ~= ARGV[1] or tostring(cur['fence']) ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SREM', KEYS[3], ARGV[3])
return 1
"""

#: KEYS lease; ARGV channel prefix, message. Publishes to the owner's channel in the
#: same step as the lookup: {receivers, owner}, or {-1, ''} when nobody holds the name.
FORWARD = """
local v = redis.call('GET', KEYS[1])
if not v then return {-1, ''} end
local owner = cjson.decode(v)['replica']
return {redis.call('PUBLISH', ARGV[1] .. owner, ARGV[2]), owner}
"""

#: KEYS names; ARGV lease prefix, info prefix. {folded, lease, info, ...} of every
#: live lease; names whose lease expired leave the set.
LIST = """
local out = {}
for _, name in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local v = redis.call('GET', ARGV[1] .. name)
  if v then
    out[#out + 1] = name
    out[#out + 1] = v
    out[#out + 1] = redis.call('GET', ARGV[2] .. name) or ''
  else
    redis.call('SREM', KEYS[1], name)
  end
end
return out
"""

#: KEYS stream, bytes, floor, numbers; ARGV max_bytes, max_entries, then 10 values per
#: event: the 7 of EVENT_FIELDS and a numbered notification's endpoint, run and number
#: ('' '' '' when it is not numbered). A numbered one whose endpoint has a number as
#: high stored for that run (the numbers hash) is a resend: not appended, its id ''.
#: Then drops the oldest while the stream holds more bytes (of 'd') or entries than
#: allowed; the newest id dropped is the floor.
XADD_BOUNDED = """
local maxb, maxn = tonumber(ARGV[1]), tonumber(ARGV[2])
local ids, added = {}, 0
for i = 3, #ARGV, 10 do
  local fresh = true
  if ARGV[i + 7] ~= '' then
    local seq = tonumber(ARGV[i + 9])
    local last = redis.call('HGET', KEYS[4], ARGV[i + 7])
    if last then
      local cut = string.find(last, ' ', 1, true)
      fresh = string.sub(last, 1, cut - 1) ~= ARGV[i + 8] or tonumber(string.sub(last, cut + 1)) < seq
    end
    if fresh then redis.call('HSET', KEYS[4], ARGV[i + 7], ARGV[i + 8] .. ' ' .. ARGV[i + 9]) end
  end
  if fresh then
    ids[#ids + 1] = redis.call('XADD', KEYS[1], '*', 'k', ARGV[i], 'e', ARGV[i + 1], 'p', ARGV[i + 2],
      't', ARGV[i + 3], 's', ARGV[i + 4], 'o', ARGV[i + 5], 'd', ARGV[i + 6])
    added = added + string.len(ARGV[i + 6])
  else
    ids[#ids + 1] = ''
  end
end
local total = redis.call('INCRBY', KEYS[2], added)
local len = redis.call('XLEN', KEYS[1])
while len > 1 and (total > maxb or len > maxn) do
  local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
  local fields, size = first[2], 0
  for j = 1, #fields, 2 do
    if fields[j] == 'd' then size = string.len(fields[j + 1]) end
  end
  redis.call('XDEL', KEYS[1], first[1])
  total = redis.call('DECRBY', KEYS[2], size)
  redis.call('SET', KEYS[3], first[1])
  len = len - 1
end
return ids
"""

#: KEYS version, document; ARGV version, document. Puts a replica's identity document
#: back into a Redis that lost it (restarted empty); 0 if another replica was first.
SEED_IDENTITIES = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2])
return 1
"""
