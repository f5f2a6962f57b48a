-- Bearer-authenticated reads: alternately GET /api/v1/me and GET /api/v1/accounts.
-- Data line per connection: an access token.
local C = dofile((os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/common.lua")

local paths = { "/api/v1/me", "/api/v1/accounts" }
local names = { "me", "accounts" }
local n = 0
local auth

setup = C.setup
done = C.done

function init(args)
  C.thread_init()
  auth = "Bearer " .. fields[1]
end

function request()
  n = n + 1
  return wrk.format("GET", paths[(n % 2) + 1], { ["Authorization"] = auth })
end

function response(status, headers, body)
  C.count(names[(n % 2) + 1], status)
end
