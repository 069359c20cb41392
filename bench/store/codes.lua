-- wrk script (-t1): authorization codes from the login page (code flow) for a signed-in browser:
-- GET AUTHORIZE_QUERY with the session cookie SESSION answers 303 to the redirect URI with a
-- fresh code, appended to OUT (one a line) for bench/store/once.lua to redeem.
local out
init = function(args) out = io.open(os.getenv("OUT"), "a") end
request = function()
  return wrk.format("GET", os.getenv("AUTHORIZE_QUERY"),
    { ["Cookie"] = "__Host-authgate-session=" .. os.getenv("SESSION") })
end
response = function(status, headers, body)
  local location = headers["location"] or headers["Location"] or ""
  local code = location:match("[?&]code=([^&]+)")
  if code then out:write(code, "\n") end
end
