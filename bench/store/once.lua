-- wrk script (-t1): every line of LINES_FILE is sent once, then the thread stops (it never
-- wraps around). MODE=bearer: GET /echo/bench with the line as the bearer token (opaque tokens,
-- uncached); MODE=code: the line is an authorization code redeemed at /oauth2/token
-- (client_secret_basic, BASIC; REDIRECT_URI). wrk's own Requests/sec divides by -d even when
-- the thread stopped early, so done() prints "ONCE <answers> <seconds from first request to
-- last answer>" (monotonic clock through LuaJIT's ffi) for the rate.
local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local lines, i = {}, 0
local mode = os.getenv("MODE") or "bearer"
started, last, answers = 0, 0, 0

init = function(args)
  for line in io.lines(os.getenv("LINES_FILE")) do lines[#lines + 1] = line end
end

request = function()
  if started == 0 then started = now() end
  i = i + 1
  local line = lines[i] or lines[#lines]
  if mode == "code" then
    return wrk.format("POST", "/oauth2/token",
      { ["Content-Type"] = "application/x-www-form-urlencoded",
        ["Authorization"] = "Basic " .. os.getenv("BASIC") },
      "grant_type=authorization_code&redirect_uri=" .. os.getenv("REDIRECT_URI") .. "&code=" .. line)
  end
  return wrk.format("GET", "/echo/bench", { ["Authorization"] = "Bearer " .. line })
end

response = function(status, headers, body)
  answers = answers + 1
  last = now()
  if answers >= #lines then wrk.thread:stop() end
end

local threads = {}
setup = function(thread) threads[#threads + 1] = thread end
done = function(summary, latency, requests)
  for _, t in ipairs(threads) do
    print(string.format("ONCE %d %.6f", t:get("answers"), t:get("last") - t:get("started")))
  end
end
