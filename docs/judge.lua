-- wrk -s judge.lua: POST the change in change.yaml to /api/v1/judge with
-- the operator token in $VGUARD_TOKEN.
local f = io.open("change.yaml", "rb")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Authorization"] = "Bearer " .. os.getenv("VGUARD_TOKEN")
wrk.headers["Content-Type"] = "application/yaml"
done = function(summary, latency, requests)
  local codes = summary.errors.status
  io.write(string.format("requests %d, non-2xx %d, socket errors %d\n", summary.requests, codes,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
  for _, p in pairs({50, 90, 99, 99.9}) do
    io.write(string.format("p%g %.2f ms\n", p, latency:percentile(p) / 1000))
  end
end
