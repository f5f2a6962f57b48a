-- Web login: GET /accounts/login/ (the CSRF form token is read from the page), then POST the
-- form with that token and the matching CSRF cookie. A successful login answers 302.
-- Data line per connection: the emails this connection signs in with, round robin.
local C = dofile((os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/common.lua")

local password = os.getenv("BENCH_PASSWORD")
-- The CSRF cookie's name as the server sets it (prod: "__Host-bp_csrftoken"), found by the runner.
local csrf_name = os.getenv("BENCH_CSRF_COOKIE") or "bp_csrftoken"
local phase = "get"
local csrf_cookie, form_token
local users, user_i
local devices = {}

setup = C.setup
done = C.done

function init(args)
  C.thread_init()
  users = fields
  user_i = 1
end

local function cookie_header(email)
  local cookie = csrf_name .. "=" .. csrf_cookie
  if devices[email] then cookie = cookie .. "; bp_device=" .. devices[email] end
  return cookie
end

function request()
  local email = users[user_i]
  if phase == "get" then
    -- A browser that already holds a CSRF cookie (the secret is 32 alphanumerics);
    -- the page then carries a form token masked from that secret.
    csrf_cookie = C.random_alnum(32)
    return wrk.format("GET", "/accounts/login/", { ["Cookie"] = cookie_header(email) })
  end
  local body = "csrfmiddlewaretoken=" .. C.urlencode(form_token)
    .. "&email=" .. C.urlencode(email) .. "&password=" .. C.urlencode(password)
  return wrk.format("POST", "/accounts/login/", {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Cookie"] = cookie_header(email),
  }, body)
end

function response(status, headers, body)
  C.count(phase, status)
  if phase == "get" then
    form_token = string.match(body or "", 'name="csrfmiddlewaretoken" value="([^"]+)"')
    if status == 200 and form_token then
      phase = "post"
    else
      C.count("get", "no_token")
    end
    return
  end
  -- Remember this browser's device cookie for the user (a returning customer's browser).
  local set_cookie = headers["Set-Cookie"] or ""
  local device = string.match(set_cookie, "bp_device=([^;]+)")
  if device then devices[users[user_i]] = device end
  phase = "get"
  user_i = (user_i % #users) + 1
end
