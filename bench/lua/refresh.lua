-- Token refresh with rotation: each connection keeps its own refresh-token chain (one login
-- family) and presents the newest token every time. Data line: email TAB refresh token.
-- If the chain breaks (any non-200), the connection signs in again and counts a "relogin".
-- done() writes each connection's latest "email TAB refresh" to BENCH_STATE_OUT (for inspection;
-- the token in flight when wrk stops may already be rotated on the server, so it is not reused).
local C = dofile((os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/common.lua")

local password = os.getenv("BENCH_PASSWORD")
local email, tok
local phase = "refresh"

setup = C.setup
done = C.done

function init(args)
  C.thread_init()
  email, tok = fields[1], fields[2]
  state_line = email .. "\t" .. tok
end

function request()
  if phase == "login" then
    local body = '{"email":' .. C.json_string(email) .. ',"password":' .. C.json_string(password)
      .. ',"device_id":' .. C.json_string(C.device_id(email)) .. '}'
    return wrk.format("POST", "/api/v1/auth/login", { ["Content-Type"] = "application/json" }, body)
  end
  return wrk.format("POST", "/api/v1/auth/token/refresh", { ["Content-Type"] = "application/json" },
    '{"refresh":' .. C.json_string(tok) .. '}')
end

function response(status, headers, body)
  C.count(phase, status)
  local new = status == 200 and C.json_field(body, "refresh") or nil
  if new then
    tok = new
    state_line = email .. "\t" .. tok
    phase = "refresh"
  else
    phase = "login"
  end
end
