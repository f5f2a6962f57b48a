-- API password login (no second factor): POST /api/v1/auth/login, 200 with tokens.
-- Data line per connection: the emails this connection signs in with, round robin.
-- Each user presents a stable device_id (a returning mobile app).
local C = dofile((os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/common.lua")

local password = os.getenv("BENCH_PASSWORD")
local users, user_i

setup = C.setup
done = C.done

function init(args)
  C.thread_init()
  users = fields
  user_i = 1
end

function request()
  local email = users[user_i]
  local body = '{"email":' .. C.json_string(email) .. ',"password":' .. C.json_string(password)
    .. ',"device_id":' .. C.json_string(C.device_id(email)) .. ',"device_name":"bench"}'
  return wrk.format("POST", "/api/v1/auth/login", { ["Content-Type"] = "application/json" }, body)
end

function response(status, headers, body)
  if status == 200 and C.json_field(body, "access") == nil then
    C.count("login", "200_without_tokens")
  else
    C.count("login", status)
  end
  user_i = (user_i % #users) + 1
end
