-- Resource reads with a provider access token (client credentials): GET /api/v1/accounts.
-- Data line per connection: the access token. Compare with `reads` (a mobile token).
local C = dofile((os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/common.lua")

local auth

setup = C.setup
done = C.done

function init(args)
  C.thread_init()
  auth = "Bearer " .. fields[1]
end

function request()
  return wrk.format("GET", "/api/v1/accounts", { ["Authorization"] = auth })
end

function response(status, headers, body)
  C.count("accounts", status)
end
