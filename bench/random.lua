-- wrk script: GET a random Connected App from the names in $NAMES_FILE (one per line), so
-- that over a large table most requests miss the service's document cache.
local names = {}
for line in io.lines(os.getenv("NAMES_FILE")) do
  names[#names + 1] = line
end
local prefix = os.getenv("PATH_PREFIX")
math.randomseed(os.time())

request = function()
  return wrk.format("GET", prefix .. names[math.random(#names)])
end

dofile(os.getenv("REPORT_LUA"))
