-- wrk script: a flood of requests with random, well-formed, unknown API keys
-- (docs/identity.md, "Bounded logging under attack"). Bounded in count:
--   wrk -t2 -c64 -d600s -s tests/fault/badkeys.lua URL -- REQUESTS_PER_THREAD
-- Each thread stops sending after its count (wrk's main thread still waits for -d or
-- SIGINT: scripts/bench-flood interrupts it); the run prints the 401 count.
counter, stop_after, unauthorized, others = 0, 500000, 0, 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  stop_after = tonumber(args[1] or stop_after)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
  wrk.method = "POST"
  wrk.headers["content-type"] = "application/json"
  wrk.body = '{"model":"fault-model","messages":[{"role":"user","content":"hi"}]}'
end

function request()
  local hex = {}
  for i = 1, 64 do hex[i] = string.format("%x", math.random(0, 15)) end
  wrk.headers["authorization"] = "Bearer jr-" .. table.concat(hex)
  return wrk.format()
end

function response(status, headers, body)
  counter = counter + 1
  if status == 401 then unauthorized = unauthorized + 1 else others = others + 1 end
  if counter >= stop_after then wrk.thread:stop() end
end

function done(summary, latency, requests)
  local u, o = 0, 0
  for _, t in ipairs(threads) do
    u = u + t:get("unauthorized")
    o = o + t:get("others")
  end
  io.write(string.format("401: %d, other statuses: %d\n", u, o))
end
