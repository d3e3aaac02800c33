-- wrk script: the same three pages the harness's `browse` scenario reads,
-- in the same order, for the generator-ceiling comparison (load/README.md).
-- Usage: EVENT=<event id> wrk -t2 -c32 -d10s -s load/bench/browse.lua http://127.0.0.1:PORT
local event = os.getenv("EVENT") or "spring-gala"
local paths = { "/api/events", "/api/events/" .. event, "/api/events/" .. event .. "/seats" }
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
