-- OAuth client-credentials token: POST /o/token/ with HTTP Basic client authentication
-- (the provider's generated secret, verified with CLIENT_SECRET_HASHER), 200 with a token.
-- Data line per connection: the Authorization header value TAB the scope.
local C = dofile((os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/common.lua")

local auth, scope

setup = C.setup
done = C.done

function init(args)
  C.thread_init()
  auth, scope = fields[1], fields[2]
end

function request()
  return wrk.format("POST", "/o/token/", {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = auth,
  }, "grant_type=client_credentials&scope=" .. C.urlencode(scope))
end

function response(status, headers, body)
  if status == 200 and C.json_field(body, "access_token") == nil then
    C.count("token", "200_without_token")
  else
    C.count("token", status)
  end
end
