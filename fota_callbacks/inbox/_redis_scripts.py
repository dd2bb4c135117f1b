"""The Lua scripts of `RedisInbox`: each storage step is one script, so each is atomic and one round trip.

The key layout is described in `fota_callbacks.inbox.redis`. Every script but `PUT` gets the same KEYS (the stream,
then `KEY_NAMES` in that order) and starts its ARGV with the group, the `create` flag ("1"/"0") and the consumer's
name. Times are the inbox clock's seconds as the exact strings Python made of them (`repr`), never computed or
printed by Lua (it prints numbers with 14 digits). Ids are kept as the strings Redis returns, compared as numbers.
"""

from __future__ import annotations

__all__ = [
    "COUNTS",
    "DEAD",
    "EXCHANGE",
    "HANDLED",
    "HOLD",
    "KEY_NAMES",
    "LEAVE",
    "NO_INBOX",
    "PROBE",
    "PURGE",
    "PUT",
    "RENEW",
    "REQUEUE",
    "REVIVE",
]

NO_INBOX = "NOINBOX"
"""The error code a script answers, the reason after it, when `create` is off and there is no inbox here."""

KEY_NAMES = (
    "seq",
    "pending",
    "ready",
    "retry",
    "held",
    "claims",
    "dead",
    "done",
    "dedup",
    "keyed",
    "attempts",
    "errors",
    "order",
    "tokens",
    "renewed",
    "delivered",
)
"""The keys besides the stream (KEYS[1]), named `<stream>:<name>`, in the order of KEYS[2:]."""

_MAKE_GROUP = """
-- Makes the stream's group (and the stream: MKSTREAM) from past what was ever delivered: what a lost group had
-- handed out is not handed out again as new. When the stream itself was `lost`, the entries stored but never
-- handed out went with it: queued, they are found gone when claimed, and dropped with an error like any other
-- whose record vanished (not counted pending for ever).
local function make_group(stream, group, pending, ready, delivered_key, lost)
  local delivered = redis.call('GET', delivered_key) or '0-0'
  redis.call('XGROUP', 'CREATE', stream, group, delivered, 'MKSTREAM')
  if not lost then return end
  local after = tonumber(string.match(delivered, '%-(%d+)$'))
  for _, id in ipairs(redis.call('ZRANGE', pending, 0, -1)) do
    if tonumber(id) > after then redis.call('ZADD', ready, id, id) end
  end
end
"""

_PRELUDE = (
    """
local S, G, CREATE, ME = KEYS[1], ARGV[1], ARGV[2] == '1', ARGV[3]
local SEQ, PENDING, READY, RETRY, HELD, CLAIMS = KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local DEAD, DONE, DEDUP, KEYED, ATTEMPTS, ERRORS = KEYS[8], KEYS[9], KEYS[10], KEYS[11], KEYS[12], KEYS[13]
local ORDER, TOKENS, RENEWED, DELIVERED = KEYS[14], KEYS[15], KEYS[16], KEYS[17]

"""
    + _MAKE_GROUP
    + """
local function sid(id) return '0-' .. id end
local function eid(stream_id) return string.sub(stream_id, 3) end

local function field(fields, name)
  for i = 1, #fields, 2 do if fields[i] == name then return fields[i + 1] end end
  return false
end

local function group_exists()
  for _, info in ipairs(redis.call('XINFO', 'GROUPS', S)) do
    if field(info, 'name') == G then return true end
  end
  return false
end

-- Raises unless the stream and its group exist; with CREATE, makes them instead (on first use, and after Redis
-- lost them: FLUSHALL, a restart without persistence). A key of another type is never taken over.
local function need_inbox()
  local kind = redis.call('TYPE', S)['ok']
  if kind ~= 'none' and kind ~= 'stream' then
    local code = CREATE and 'WRONGTYPE' or 'NOINBOX'
    error(redis.error_reply(code .. ' the key ' .. S .. ' holds a ' .. kind .. ', not a stream'))
  end
  if kind == 'stream' and group_exists() then return end
  if not CREATE then
    local what = kind == 'none' and 'no stream ' .. S or 'the stream ' .. S .. ' has no consumer group ' .. G
    error(redis.error_reply('NOINBOX ' .. what))
  end
  make_group(S, G, PENDING, READY, DELIVERED, kind == 'none')
end

-- For the worker's steps: one cheap command when all is well (which also shows this consumer in the group). It
-- is one Redis refuses when out of memory, read-only or unable to write its files: a step fails before it changes
-- anything (XREADGROUP, which Redis never refuses for memory, must not hand out entries that cannot be claimed).
local function need_group()
  local made = redis.pcall('XGROUP', 'CREATECONSUMER', S, G, ME)
  if type(made) == 'table' and made['err'] then
    need_inbox()
    redis.call('XGROUP', 'CREATECONSUMER', S, G, ME)
  end
end

-- The members of KEYED, all of score 0, sort by order key then id: '<length>:<key>:<id in 20 digits>'.
local function prefix(key) return #key .. ':' .. key .. ':' end
local function member(key, id) return prefix(key) .. string.rep('0', 20 - #id) .. id end

-- The id of the oldest pending entry stored with order key `key`, or nil.
local function first_of(key)
  local p = prefix(key)
  local found = redis.call('ZRANGEBYLEX', KEYED, '[' .. p, '(' .. p .. '\\255', 'LIMIT', 0, 1)[1]
  return found and tonumber(string.sub(found, -20)) or nil
end

local function holds(id, token) return redis.call('HGET', TOKENS, id) == token end

local function unclaim(id)
  redis.call('HDEL', TOKENS, id)
  redis.call('HDEL', RENEWED, id)
  redis.call('ZREM', CLAIMS, id)
  redis.call('XACK', S, G, sid(id))
end

local function claim(id, until_, now, token)
  redis.call('HSET', TOKENS, id, token)
  redis.call('HSET', RENEWED, id, now)
  redis.call('ZADD', CLAIMS, until_, id)
end

-- Done or dead: no longer pending, and the next entry of its order key, parked behind it, is due.
local function leave_pending(id)
  redis.call('ZREM', PENDING, id)
  local key = redis.call('HGET', ORDER, id)
  if key and key ~= '' then
    redis.call('ZREM', KEYED, member(key, id))
    local next_id = first_of(key)
    if next_id and redis.call('ZREM', HELD, next_id) == 1 then redis.call('ZADD', READY, next_id, next_id) end
  end
end

-- Everything about an entry, gone: a done entry past retain_done, or one whose stream record vanished.
local function forget(id)
  local key = redis.call('HGET', ORDER, id)
  if key and key ~= '' then redis.call('ZREM', KEYED, member(key, id)) end
  for _, set in ipairs({PENDING, READY, RETRY, HELD, CLAIMS, DEAD, DONE}) do redis.call('ZREM', set, id) end
  for _, hash in ipairs({ATTEMPTS, ERRORS, ORDER, TOKENS, RENEWED}) do redis.call('HDEL', hash, id) end
  redis.call('XACK', S, G, sid(id))
  redis.call('XDEL', S, sid(id))
end

-- A dead or done entry (in `from`) pending again: due now, no attempts, its order key (when known) holding back
-- later ones. The writes Redis may refuse (out of memory) come before the removal: refused, nothing changed.
local function to_pending(id, from)
  if not redis.call('ZSCORE', from, id) then return false end
  local record = redis.call('XRANGE', S, sid(id), sid(id))[1]
  if not record then forget(id) return false end
  redis.call('ZADD', PENDING, field(record[2], 'received'), id)
  redis.call('ZADD', READY, id, id)
  local key = redis.call('HGET', ORDER, id)
  if key and key ~= '' then redis.call('ZADD', KEYED, 0, member(key, id)) end
  redis.call('HDEL', ATTEMPTS, id)
  redis.call('ZREM', from, id)
  return true
end
"""
)

PUT = (
    _MAKE_GROUP
    + """
-- KEYS: stream, seq, pending, dedup, delivered, ready. ARGV: create, group, body, now, dedup key, dedup until (''
-- when off), trace ('' when none). Returns the new entry's id, or 0 for a duplicate.
local S, SEQ, PENDING, DEDUP, DELIVERED, READY = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local CREATE, G, now = ARGV[1] == '1', ARGV[2], ARGV[4]
local kind = redis.call('TYPE', S)['ok']
if kind == 'none' then
  if not CREATE then return redis.error_reply('NOINBOX no stream ' .. S) end
  make_group(S, G, PENDING, READY, DELIVERED, true)
elseif kind ~= 'stream' then
  local code = CREATE and 'WRONGTYPE' or 'NOINBOX'
  return redis.error_reply(code .. ' the key ' .. S .. ' holds a ' .. kind .. ', not a stream')
elseif not CREATE then
  local found = false
  for _, info in ipairs(redis.call('XINFO', 'GROUPS', S)) do
    if info[2] == G then found = true end
  end
  if not found then return redis.error_reply('NOINBOX the stream ' .. S .. ' has no consumer group ' .. G) end
end
if ARGV[6] ~= '' then
  local until_ = redis.call('ZSCORE', DEDUP, ARGV[5])
  if until_ and tonumber(until_) > tonumber(now) then return 0 end
  redis.call('ZADD', DEDUP, ARGV[6], ARGV[5])
end
local id = redis.call('INCR', SEQ)
local record = {'XADD', S, '0-' .. id, 'body', ARGV[3], 'received', now}
if ARGV[7] ~= '' then
  record[8] = 'trace'
  record[9] = ARGV[7]
end
local added = redis.pcall(unpack(record))
if type(added) == 'table' and added['err'] then
  -- The counter is behind the stream (its key was deleted or restored apart from it): go on after the stream.
  local info, last = redis.call('XINFO', 'STREAM', S), '0-0'
  for i = 1, #info, 2 do if info[i] == 'last-generated-id' then last = info[i + 1] end end
  redis.call('SET', SEQ, string.match(last, '%-(%d+)$'))
  id = redis.call('INCR', SEQ)
  record[3] = '0-' .. id
  redis.call(unpack(record))
end
redis.call('ZADD', PENDING, now, id)
return id
"""
)

EXCHANGE = (
    _PRELUDE
    + """
-- ARGV[4..]: now, limit, until (now + claim_idle), retain ('1'/'0'), token prefix, then 7 per outcome: kind, id,
-- token, at, error, due, attempts. Records the outcomes, then claims up to `limit` entries, oldest first. Returns
-- the ids whose stream record vanished, then 7 per claim: id, body, attempts, token, received, order key, trace.
local now, limit, until_, retain, minted = ARGV[4], tonumber(ARGV[5]), ARGV[6], ARGV[7] == '1', ARGV[8]
need_group()

local function settle(kind, id, token, at, err, due, attempts)
  if not holds(id, token) then return end  -- lapsed, and claimed again since: that claim settles it
  unclaim(id)
  if kind == 'release' then redis.call('ZADD', READY, id, id) return end
  if kind ~= 'done' then
    redis.call('HSET', ATTEMPTS, id, attempts)
    redis.call('HSET', ERRORS, id, err)
  end
  if kind == 'retry' then redis.call('ZADD', RETRY, due, id) return end
  leave_pending(id)
  if kind == 'dead' then
    redis.call('ZADD', DEAD, id, id)
  elseif retain then
    redis.call('ZADD', DONE, at, id)
    redis.call('HDEL', ATTEMPTS, id)
    redis.call('HDEL', ERRORS, id)
  else
    forget(id)
  end
end

for i = 9, #ARGV, 7 do settle(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6]) end

local out, lost, count = {}, {}, 0

local function take(id, fields, attempts, key)
  count = count + 1
  local token = minted .. '.' .. count
  claim(id, until_, now, token)
  local at = #out
  out[at + 1], out[at + 2], out[at + 3], out[at + 4] = id, field(fields, 'body'), attempts, token
  out[at + 5], out[at + 6], out[at + 7] = field(fields, 'received'), key, field(fields, 'trace')
end

-- Whether the entry must wait for an older pending entry of its (stored) order key; if so, it is parked.
local function parked(id, key, lapsed)
  if not key or key == '' then return false end
  local first = first_of(key)
  if not first or first >= tonumber(id) then return false end
  if lapsed then unclaim(id) else redis.call('ZREM', READY, id) end
  redis.call('ZADD', HELD, id, id)
  return true
end

-- Given back to this consumer in one XCLAIM (FORCE: a released entry is in no pending list any more).
local function take_back(chosen)
  local command = {'XCLAIM', S, G, ME, 0}
  for i, entry in ipairs(chosen) do command[5 + i] = sid(entry[1]) end
  command[#command + 1] = 'FORCE'
  local records = {}
  for _, record in ipairs(redis.call(unpack(command))) do records[eid(record[1])] = record[2] end
  for _, entry in ipairs(chosen) do
    local id = entry[1]
    redis.call('ZREM', READY, id)
    if records[id] then
      take(id, records[id], redis.call('HGET', ATTEMPTS, id) or 0, entry[2])
    else
      forget(id)
      lost[#lost + 1] = id
    end
  end
end

-- Retries that are due join the released entries (a bounded move: a backlog takes a few exchanges).
for _, id in ipairs(redis.call('ZRANGEBYSCORE', RETRY, '-inf', now, 'LIMIT', 0, 1000)) do
  redis.call('ZREM', RETRY, id)
  redis.call('ZADD', READY, id, id)
end

-- Entries handed out before (released, retried, claims that lapsed) come first: they are older than any new one.
while count < limit do
  local want = limit - count
  local candidates = {}
  for _, id in ipairs(redis.call('ZRANGE', READY, 0, want - 1)) do candidates[#candidates + 1] = {id, false} end
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', CLAIMS, '-inf', now, 'LIMIT', 0, want)) do
    candidates[#candidates + 1] = {id, true}
  end
  if #candidates == 0 then break end
  table.sort(candidates, function(a, b) return tonumber(a[1]) < tonumber(b[1]) end)
  local chosen = {}
  for _, candidate in ipairs(candidates) do
    if #chosen >= want then break end
    local id = candidate[1]
    local key = redis.call('HGET', ORDER, id)
    if not parked(id, key, candidate[2]) then chosen[#chosen + 1] = {id, key} end
  end
  if #chosen > 0 then take_back(chosen) end
end

if count < limit then
  local read = redis.call('XREADGROUP', 'GROUP', G, ME, 'COUNT', limit - count, 'STREAMS', S, '>')
  if read then
    local records = read[1][2]
    for _, record in ipairs(records) do take(eid(record[1]), record[2], 0, false) end
    if #records > 0 then redis.call('SET', DELIVERED, records[#records][1]) end
  end
end

local reply = {#lost}
for _, id in ipairs(lost) do reply[#reply + 1] = id end
for _, value in ipairs(out) do reply[#reply + 1] = value end
return reply
"""
)

HOLD = (
    _PRELUDE
    + """
-- ARGV[4..]: now, then 3 per claim: id, token, order key ('' for none). Stores each key; releases and returns the
-- ids that must wait: parked behind an older pending entry of the same key (until it is done or dead), or due
-- again now when an older entry is claimed and its key not stored yet (its worker is keying it).
local now = ARGV[4]
need_group()
local mine = {}
for i = 5, #ARGV, 3 do
  local id, token, key = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if holds(id, token) then
    redis.call('HSET', ORDER, id, key)
    if key ~= '' then redis.call('ZADD', KEYED, 0, member(key, id)) end
    mine[#mine + 1] = {id, key}
  end
end
local unkeyed = nil
for _, id in ipairs(redis.call('ZRANGEBYSCORE', CLAIMS, '(' .. now, '+inf')) do
  local n = tonumber(id)
  if (not unkeyed or n < unkeyed) and redis.call('HEXISTS', ORDER, id) == 0 then unkeyed = n end
end
local held = {}
for _, entry in ipairs(mine) do
  local id, key = entry[1], entry[2]
  local n = tonumber(id)
  local first = key ~= '' and first_of(key)
  if first and first < n then
    unclaim(id)
    redis.call('ZADD', HELD, id, id)
    held[#held + 1] = id
  elseif unkeyed and unkeyed < n then
    unclaim(id)
    redis.call('ZADD', READY, id, id)
    held[#held + 1] = id
  end
end
return held
"""
)

RENEW = (
    _PRELUDE
    + """
-- ARGV[4..]: now, until, then 2 per claim: id, token. Extends the claims that still hold; the group's pending list
-- shows the renewal too (XCLAIM JUSTID resets the idle time XPENDING reports).
need_group()
local ids = {}
for i = 6, #ARGV, 2 do
  local id = ARGV[i]
  if holds(id, ARGV[i + 1]) then
    redis.call('ZADD', CLAIMS, ARGV[5], id)
    redis.call('HSET', RENEWED, id, ARGV[4])
    ids[#ids + 1] = sid(id)
  end
end
if #ids > 0 then
  local command = {'XCLAIM', S, G, ME, 0}
  for i, id in ipairs(ids) do command[5 + i] = id end
  command[#command + 1] = 'FORCE'
  command[#command + 1] = 'JUSTID'
  redis.call(unpack(command))
end
return #ids
"""
)

PURGE = (
    _PRELUDE
    + """
-- ARGV[4..]: now, cutoff (now - retain_done), claim_idle in ms, batch. Deletes up to `batch` done entries handled
-- by `cutoff` (returns how many), the dedup keys expired by `now`, and the consumers that hold nothing and were not
-- seen for claim_idle (a killed replica's: a live worker's is made again by its next step).
need_group()
local purged = 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', DONE, '-inf', ARGV[5], 'LIMIT', 0, tonumber(ARGV[7]))) do
  forget(id)
  purged = purged + 1
end
redis.call('ZREMRANGEBYSCORE', DEDUP, '-inf', ARGV[4])
for _, consumer in ipairs(redis.call('XINFO', 'CONSUMERS', S, G)) do
  local name = field(consumer, 'name')
  if name ~= ME and field(consumer, 'pending') == 0 and field(consumer, 'idle') > tonumber(ARGV[6]) then
    redis.call('XGROUP', 'DELCONSUMER', S, G, name)
  end
end
return purged
"""
)

COUNTS = (
    _PRELUDE
    + """
-- ARGV[4]: now. Returns pending, dead, done, the oldest pending entry's received time (or false), then 3 per claim
-- in flight: id, until, renewed.
if not CREATE then need_inbox() end
local reply = {redis.call('ZCARD', PENDING), redis.call('ZCARD', DEAD), redis.call('ZCARD', DONE)}
reply[4] = redis.call('ZRANGE', PENDING, 0, 0, 'WITHSCORES')[2] or false
local flying = redis.call('ZRANGEBYSCORE', CLAIMS, '(' .. ARGV[4], '+inf', 'WITHSCORES')
for i = 1, #flying, 2 do
  local id = flying[i]
  reply[#reply + 1] = id
  reply[#reply + 1] = flying[i + 1]
  reply[#reply + 1] = redis.call('HGET', RENEWED, id) or flying[i + 1]
end
return reply
"""
)

DEAD = (
    _PRELUDE
    + """
-- Returns 5 per dead letter, oldest first: id, body, received, attempts, last error.
if not CREATE then need_inbox() end
local reply = {}
for _, id in ipairs(redis.call('ZRANGE', DEAD, 0, -1)) do
  local record = redis.call('XRANGE', S, sid(id), sid(id))[1]
  local fields = record and record[2] or {}
  reply[#reply + 1] = id
  reply[#reply + 1] = field(fields, 'body') or ''
  reply[#reply + 1] = field(fields, 'received') or '0'
  reply[#reply + 1] = redis.call('HGET', ATTEMPTS, id) or 0
  reply[#reply + 1] = redis.call('HGET', ERRORS, id)
end
return reply
"""
)

REVIVE = (
    _PRELUDE
    + """
-- ARGV[4]: the dead letter's id, or '' for every one. Returns how many are pending again.
if not CREATE then need_inbox() end
local ids = ARGV[4] == '' and redis.call('ZRANGE', DEAD, 0, -1) or {ARGV[4]}
local revived = 0
for _, id in ipairs(ids) do
  if to_pending(id, DEAD) then revived = revived + 1 end
end
return revived
"""
)

REQUEUE = (
    _PRELUDE
    + """
-- ARGV[4..]: ids. The done entries among them are pending again; returns how many.
if not CREATE then need_inbox() end
local requeued = 0
for i = 4, #ARGV do
  local id = ARGV[i]
  if to_pending(id, DONE) then requeued = requeued + 1 end
end
return requeued
"""
)

HANDLED = (
    _PRELUDE
    + """
-- ARGV[4..]: since, until ('' for none), after (an id), scan. Reads up to `scan` stream records after `after`;
-- returns the last id read (false when none was), then 2 per done entry received in [since, until): id, body.
if not CREATE then need_inbox() end
local since, until_ = tonumber(ARGV[4]), ARGV[5] ~= '' and tonumber(ARGV[5])
local records = redis.call('XRANGE', S, '(0-' .. ARGV[6], '+', 'COUNT', tonumber(ARGV[7]))
local reply = {records[#records] and eid(records[#records][1]) or false}
for _, record in ipairs(records) do
  local id = eid(record[1])
  local received = tonumber(field(record[2], 'received'))
  if received >= since and (not until_ or received < until_) and redis.call('ZSCORE', DONE, id) then
    reply[#reply + 1] = id
    reply[#reply + 1] = field(record[2], 'body')
  end
end
return reply
"""
)

PROBE = (
    _PRELUDE
    + """
-- Raises unless the inbox is there (or, with CREATE, made) and Redis takes writes now: a replica answers READONLY,
-- a full Redis OOM, a failing disk MISCONF. The write (ZADD XX of a member that is never there) changes nothing.
need_inbox()
redis.call('ZADD', PENDING, 'XX', 0, 'readiness probe')
return 1
"""
)

LEAVE = """
-- KEYS: stream. ARGV: group, consumer. A closing consumer leaves the group unless it still holds entries.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local ok, pending = pcall(redis.call, 'XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if ok and #pending == 0 then redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2]) end
return 1
"""
