-- Payment creation below the step-up threshold, each with a fresh Idempotency-Key.
-- Data line per connection: access token TAB source account id TAB payee IBAN TAB currency
-- TAB amount. A created payment answers 201.
local C = dofile((os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/common.lua")

local n = 0
local auth, from_account, to_iban, currency, amount

setup = C.setup
done = C.done

function init(args)
  C.thread_init()
  auth = "Bearer " .. fields[1]
  from_account, to_iban, currency, amount = fields[2], fields[3], fields[4], fields[5]
end

function request()
  n = n + 1
  local body = '{"from_account":' .. C.json_string(from_account) .. ',"to_iban":' .. C.json_string(to_iban)
    .. ',"amount":' .. C.json_string(amount) .. ',"currency":' .. C.json_string(currency)
    .. ',"reference":' .. C.json_string("bench " .. n) .. '}'
  return wrk.format("POST", "/api/v1/payments", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = auth,
    ["Idempotency-Key"] = "bench-" .. run_id .. "-" .. tid .. "-" .. n,
  }, body)
end

function response(status, headers, body)
  C.count("create", status)
end
