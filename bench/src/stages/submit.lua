-- `POST /submit` load for tributary-bench (run by wrk; see requests.rs).
--
-- Every request is one ad click with an index of its own: the indexes of a
-- run's threads interleave (thread t of n sends t, t + n, t + 2n, ...), and
-- the index picks the IP address, advertiser (the record key), campaign and
-- page as the bench's other workloads do (workload.rs), so the records spread
-- over the partitions the same way. Every request carries an Idempotency-Key
-- of its own: the run's tag (the first argument after `--`) and the index.
-- The second argument is the number of threads.
--
-- done() prints one line, `tributary-bench:` and a JSON object: the counts,
-- the latency percentiles in microseconds, and wrk's own user + system CPU
-- time in clock ticks, read from /proc/self/stat.

local user_agent = "Mozilla/5.0 (X11; Linux x86_64) tributary-bench/1"
local referrer = "https://news.example.com/articles/2026/11/markets"
local threads = {}

function setup(thread)
   thread:set("thread_index", #threads)
   table.insert(threads, thread)
end

function init(args)
   tag = args[1] or "wrk"
   thread_count = tonumber(args[2]) or 1
   sent = 0
end

function request()
   local i = sent * thread_count + thread_index
   sent = sent + 1
   local body = string.format(
      '{"ip_address":"198.51.100.%d","user_agent":"%s","referring_url":"%s",'
         .. '"advertiser_id":"adv-%03d","campaign_id":"campaign-%d",'
         .. '"metadata":{"slot":"top","page":%d}}',
      i % 250 + 1, user_agent, referrer, i % 100, i % 10, i % 7)
   return wrk.format("POST", nil, {
      ["Content-Type"] = "application/json",
      ["Idempotency-Key"] = tag .. "-" .. i,
   }, body)
end

-- utime + stime of this process so far, in clock ticks.
local function cpu_ticks()
   local file = io.open("/proc/self/stat", "r")
   if not file then return -1 end
   local stat = file:read("*a")
   file:close()
   -- The command name (field 2) is in parentheses and may hold spaces; the
   -- fields after the last `)` start at field 3.
   local fields = {}
   for field in stat:match(".*%)%s+(.*)"):gmatch("%S+") do
      table.insert(fields, field)
   end
   return tonumber(fields[14 - 2]) + tonumber(fields[15 - 2])
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'tributary-bench:{"requests":%d,"duration_us":%d,"connect_errors":%d,'
         .. '"read_errors":%d,"write_errors":%d,"status_errors":%d,"timeouts":%d,'
         .. '"p50_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"cpu_ticks":%d}\n',
      summary.requests, summary.duration, e.connect, e.read, e.write, e.status,
      e.timeout, latency:percentile(50), latency:percentile(99),
      latency:percentile(99.9), latency.max, cpu_ticks()))
end
