-- wrk script: every request carries the next token of the file (never one sent before in the
-- run, until the file is exhausted; then it wraps around and the cache hit rate shows it).
local tokens = {}
local i = 0

init = function(args)
  for line in io.lines(os.getenv("TOKENS_FILE")) do
    tokens[#tokens + 1] = "Bearer " .. line
  end
end

request = function()
  i = i + 1
  if i > #tokens then i = 1 end
  return wrk.format("GET", "/bench", { ["Authorization"] = tokens[i] })
end
