"""The gateway's RED metrics: requests by route template and status, and their duration."""

from prometheus_client import Counter, Histogram

HTTP_REQUESTS = Counter(
    "hotelcs_http_requests_total",
    "HTTP requests answered by the gateway.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "hotelcs_http_request_duration_seconds",
    "Time to answer an HTTP request at the gateway.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RPC_DURATION = Histogram(
    "hotelcs_gateway_rpc_duration_seconds",
    "Time the gateway waited for a service's answer.",
    ["service", "method"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
