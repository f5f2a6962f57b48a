-- Shared by every bench scenario (loaded with dofile in wrk's main state and in each thread).
--
-- The runner starts wrk with as many threads as connections (-t N -c N), so each wrk thread
-- drives exactly one keep-alive connection and request()/response() strictly alternate:
-- per-thread Lua state is per-connection state (CSRF token, refresh-token chain, ...).
--
-- Environment: BENCH_DATA  file with one line per connection (tab-separated fields),
--              BENCH_STATE_OUT  where done() writes each connection's final state line,
--              BENCH_RUN_ID  distinguishes wrk runs (warm-up vs measured) in idempotency keys.

local M = {}

function M.split(s, sep)
  local out = {}
  for field in string.gmatch(s or "", "([^" .. sep .. "]+)") do
    out[#out + 1] = field
  end
  return out
end

function M.urlencode(s)
  return (string.gsub(s, "([^%w%-%.%_%~])", function(c)
    return string.format("%%%02X", string.byte(c))
  end))
end

function M.json_string(s)
  s = string.gsub(s, '[%c"\\]', function(c)
    if c == '"' then return '\\"' end
    if c == "\\" then return "\\\\" end
    return string.format("\\u%04x", string.byte(c))
  end)
  return '"' .. s .. '"'
end

-- Encodes nested tables of strings/numbers/booleans (keys are strings or array indices).
function M.json(v)
  local t = type(v)
  if t == "table" then
    if #v > 0 or next(v) == nil then
      local parts = {}
      for i = 1, #v do parts[#parts + 1] = M.json(v[i]) end
      if #v == 0 then return "{}" end
      return "[" .. table.concat(parts, ",") .. "]"
    end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = tostring(k) end
    table.sort(keys)
    local parts = {}
    for _, k in ipairs(keys) do parts[#parts + 1] = M.json_string(k) .. ":" .. M.json(v[k]) end
    return "{" .. table.concat(parts, ",") .. "}"
  elseif t == "string" then
    return M.json_string(v)
  elseif t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return "null" end
    if v == math.floor(v) then return string.format("%d", v) end
    return string.format("%.6f", v)
  elseif t == "boolean" then
    return tostring(v)
  end
  return "null"
end

-- Extracts the string value of "key" from a flat JSON body (the API's token responses).
function M.json_field(body, key)
  return string.match(body or "", '"' .. key .. '"%s*:%s*"([^"]*)"')
end

-- The stable device_id a user's app presents (the API accepts [A-Za-z0-9._:-]).
function M.device_id(email)
  return "bench-" .. (string.gsub(email, "[^%w%._:-]", "-"))
end

local ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
function M.random_alnum(n)
  local out = {}
  for i = 1, n do
    local k = math.random(1, #ALNUM)
    out[i] = string.sub(ALNUM, k, k)
  end
  return table.concat(out)
end

-- Per-connection outcome counters: counts["<step>:<status>"] = n.
counts = {}
function M.count(step, status)
  local key = step .. ":" .. tostring(status)
  counts[key] = (counts[key] or 0) + 1
end

-- Main state: hand each thread its data line.
local threads = {}
local data_lines = nil

local function read_lines(path)
  local lines = {}
  if path == nil or path == "" then return lines end
  local f = io.open(path, "r")
  if f == nil then return lines end
  for line in f:lines() do
    if line ~= "" then lines[#lines + 1] = line end
  end
  f:close()
  return lines
end

function M.setup(thread)
  if data_lines == nil then data_lines = read_lines(os.getenv("BENCH_DATA")) end
  local id = #threads + 1
  threads[id] = thread
  thread:set("tid", id)
  if #data_lines > 0 then
    thread:set("line", data_lines[((id - 1) % #data_lines) + 1])
  else
    thread:set("line", "")
  end
end

function M.thread_init()
  math.randomseed(os.time() * 1000 + (tid or 0) * 7919 + math.floor(os.clock() * 1e6))
  fields = M.split(line, "\t")
  run_id = os.getenv("BENCH_RUN_ID") or "0"
end

-- Main state: one JSON line with wrk's summary, latency percentiles (ms) and the merged
-- per-connection counters; and each thread's final state line when state_out is set.
function M.done(summary, latency, requests)
  local merged = {}
  local states = {}
  for i, thread in ipairs(threads) do
    local c = thread:get("counts") or {}
    for k, n in pairs(c) do merged[k] = (merged[k] or 0) + n end
    local s = thread:get("state_line")
    if s ~= nil then states[#states + 1] = s end
  end
  local out_path = os.getenv("BENCH_STATE_OUT")
  if out_path ~= nil and out_path ~= "" and #states > 0 then
    local f = io.open(out_path, "w")
    for _, s in ipairs(states) do f:write(s, "\n") end
    f:close()
  end
  local p = {}
  for _, q in ipairs({ 50, 75, 90, 95, 99, 99.9 }) do
    p[tostring(q)] = latency:percentile(q) / 1000.0
  end
  local result = {
    duration_s = summary.duration / 1e6,
    requests = summary.requests,
    bytes = summary.bytes,
    errors = {
      connect = summary.errors.connect,
      read = summary.errors.read,
      write = summary.errors.write,
      status = summary.errors.status,
      timeout = summary.errors.timeout,
    },
    latency_ms = {
      mean = latency.mean / 1000.0,
      stdev = latency.stdev / 1000.0,
      max = latency.max / 1000.0,
      percentiles = p,
    },
    counts = merged,
  }
  io.write("BENCH_JSON ", M.json(result), "\n")
end

return M
