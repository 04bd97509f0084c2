-- wrk script for bench/run.
--
-- Without BENCH_RANGE_SPAN the request is static (wrk builds it once, so the
-- client costs as little as possible): the URL and -H headers from the
-- command line.
--
-- With BENCH_RANGE_SPAN=N (the object's size in bytes) every request is a GET
-- with "Range: bytes=a-b" for a random BENCH_RANGE_LEN-byte (default 1 MiB)
-- slice aligned to BENCH_RANGE_LEN inside the object.
--
-- done() prints one machine-readable line that bench/lib.sh parses.

local span = tonumber(os.getenv("BENCH_RANGE_SPAN") or "0")
local rlen = tonumber(os.getenv("BENCH_RANGE_LEN") or "1048576")

if span > 0 then
   local slots = math.floor(span / rlen)
   local counter = 0

   function setup(thread)
      counter = counter + 1
      thread:set("seed", counter)
   end

   function init(args)
      math.randomseed(os.time() + (seed or 0) * 7919)
   end

   function request()
      local off = math.random(0, slots - 1) * rlen
      return wrk.format("GET", nil, { Range = "bytes=" .. off .. "-" .. (off + rlen - 1) })
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "WRK_RESULT requests=%d duration_us=%d bytes=%d p50_us=%d p90_us=%d p99_us=%d " ..
      "max_us=%d mean_us=%.1f err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n",
      summary.requests, summary.duration, summary.bytes,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean,
      e.connect, e.read, e.write, e.status, e.timeout))
end
