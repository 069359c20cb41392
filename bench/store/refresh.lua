-- wrk script (-t1): refresh-token rotation. Every request spends a refresh token that was never
-- sent before: the pool starts with the tokens of SEED_FILE (one a line, more than the
-- connections) and every answer puts its new refresh token back, so each connection in effect
-- keeps the token of the previous answer. DIALECT=oauth2: POST /oauth2/token, client_secret_basic
-- (BASIC = base64 of "id:secret"); DIALECT=mobile: POST /auth/token, public client MOBILE_CLIENT.
-- With OUT set, every access token answered is appended to that file (pre-issuing opaque tokens).
-- DEBUG=1 prints every answer other than 200 to stderr.
local pool, head, tail = {}, 1, 0
local dialect = os.getenv("DIALECT") or "oauth2"
local out

init = function(args)
  for line in io.lines(os.getenv("SEED_FILE")) do
    tail = tail + 1
    pool[tail] = line
  end
  if os.getenv("OUT") then out = io.open(os.getenv("OUT"), "a") end
end

request = function()
  local token = "spent"  -- only when the pool is empty: answered 400 and counted as non-2xx
  if head <= tail then
    token = pool[head]
    pool[head] = nil
    head = head + 1
  end
  if dialect == "mobile" then
    return wrk.format("POST", "/auth/token",
      { ["Content-Type"] = "application/x-www-form-urlencoded" },
      "client_id=" .. os.getenv("MOBILE_CLIENT") .. "&grant_type=refresh_token&refresh_token=" .. token)
  end
  return wrk.format("POST", "/oauth2/token",
    { ["Content-Type"] = "application/x-www-form-urlencoded",
      ["Authorization"] = "Basic " .. os.getenv("BASIC") },
    "grant_type=refresh_token&refresh_token=" .. token)
end

response = function(status, headers, body)
  if status ~= 200 and os.getenv("DEBUG") then io.stderr:write(status, " ", body, "\n") end
  local token = body:match('"refresh_token":"([^"]+)"')
  if token then
    tail = tail + 1
    pool[tail] = token
  end
  if out and status == 200 then
    local access = body:match('"access_token":"([^"]+)"')
    if access then out:write(access, "\n") end
  end
end
