-- OAuth authorization-code exchange: POST /o/token/ with grant_type=authorization_code, the code,
-- its redirect_uri and PKCE code_verifier, HTTP Basic client authentication (a confidential
-- client's generated secret). Success: 200 with an access token and, for scope openid, an ID token.
-- Data line per connection: the Authorization header value TAB the redirect_uri TAB the path of
-- this connection's codes file (one "code TAB verifier" per line, each presented once). A
-- connection that has used all its codes counts "token:exhausted" (an error: the runner mints
-- enough) and asks /healthz instead, so that no code is ever presented twice. (wrk calls the first
-- thread's request() once to check it and never sends that one: its code is skipped.)
local C = dofile((os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/common.lua")

local auth, redirect_uri
local codes = {}
local next_code = 1
local exhausted = false

setup = C.setup
done = C.done

function init(args)
  C.thread_init()
  auth, redirect_uri = fields[1], fields[2]
  local f = fields[3] and io.open(fields[3], "r")
  if f then
    for line in f:lines() do
      local pair = C.split(line, "\t")
      if #pair == 2 then codes[#codes + 1] = pair end
    end
    f:close()
  end
end

function request()
  local pair = codes[next_code]
  if pair == nil then
    exhausted = true
    return wrk.format("GET", "/healthz")
  end
  exhausted = false
  next_code = next_code + 1
  local body = "grant_type=authorization_code&code=" .. C.urlencode(pair[1])
    .. "&redirect_uri=" .. C.urlencode(redirect_uri) .. "&code_verifier=" .. C.urlencode(pair[2])
  return wrk.format("POST", "/o/token/", {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = auth,
  }, body)
end

function response(status, headers, body)
  if exhausted then
    C.count("token", "exhausted")
  elseif status == 200 and C.json_field(body, "access_token") == nil then
    C.count("token", "200_without_token")
  elseif status == 200 and C.json_field(body, "id_token") == nil then
    C.count("token", "200_without_id_token")
  else
    C.count("token", status)
  end
end
