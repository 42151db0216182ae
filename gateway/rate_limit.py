"""Token-bucket rate limits, kept in Redis so every gateway process shares one bucket.

Per token: `RATE_LIMIT_PER_TOKEN` requests a second sustained, bursts of
`RATE_LIMIT_BURST`; per address for requests without a token: `RATE_LIMIT_PER_ADDRESS`,
bursts of `RATE_LIMIT_ADDRESS_BURST`. A rate of 0 turns that limit off. If Redis cannot be
reached the gateway lets requests through (and logs it): a limiter must not become an outage.

Every request pays a check, so its client cost counts: redis-py packs the command and parses
the answer in C when hiredis is installed (it is in requirements.txt): 120 -> 80 us of CPU
per check, measured alone. And a check must not give up its turn: redis-py's connection
pool asks a connection's socket, every time it hands it out, whether the server sent
anything unasked (a `select`, which under eventlet switches to the hub, so the request
waits behind whatever else is ready). The limiter therefore keeps its own clients open
(`servicekit.connections.KeptOpen`), each on a connection of its own, one per check in
flight: no such question, and as many checks side by side as requests (one shared
connection would queue them all behind a Redis that stopped answering). A client whose
command failed is closed; the next check opens another. The whole `check` measured alone
(5,000 in a row, four rounds): 176-211 us of CPU with redis-py's pool, 103-128 us this way.

Fewer checks still: a gateway process takes a few tokens at a time from the shared bucket
(`TakenAhead`: a tenth of a second's worth, at most `MOST_TAKEN_AHEAD`, kept for at most
`KEPT_AHEAD_SECONDS`) and lets the caller's next requests through on them without asking
Redis. No caller ever gets more than its limit (every request is paid for with a token of
the shared bucket); a caller whose requests move to another process, or stop, can find the
tokens kept ahead elsewhere missing for up to a second: at most `MOST_TAKEN_AHEAD` per
process, against a burst of 200 by default. In each process one of a caller's requests
asks Redis at a time; the caller's other requests in flight share its answer (the tokens it
kept, a refusal, or Redis away, when all go through after that one check's timeout): each
asking too would take more than the caller needs and, with its burst nearly spent, be
refused while the tokens kept would have paid for it. Limits under 20 a second (the
per-address one) are asked of Redis on every request, side by side, as before. A bucket
Redis found empty is refused in the process without asking until a token has refilled
(`Retry-After` from the same time): a caller hammering past its limit, a password guesser
say, costs Redis one check per refill rather than one per request.
"""

import logging
import math
import time

import redis
from eventlet.event import Event as Signal
from nameko.extensions import DependencyProvider
from redis.commands.core import Script

from servicekit import settings
from servicekit.connections import KeptOpen

log = logging.getLogger(__name__)

# Refill by elapsed time, then take up to ARGV[4] whole tokens, as many as there are;
# atomic in Redis. Returns {tokens taken, seconds until a token is there}.
_TAKE_TOKENS = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local wanted = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local taken = math.min(wanted, math.floor(tokens))
local wait = 0
if taken >= 1 then
  tokens = tokens - taken
else
  taken = 0
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now)
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
return {taken, tostring(wait)}
"""

# A process takes ahead at most a tenth of a second's worth of its caller's tokens, and of
# the burst, and never more than this many at once.
MOST_TAKEN_AHEAD = 10
KEPT_AHEAD_SECONDS = 1.0
# what a check's answer is when Redis could not be asked: the request goes through
_REDIS_AWAY = "redis away"


class Limits:
    def __init__(self):
        self.per_token = settings.float_setting("RATE_LIMIT_PER_TOKEN", 100, minimum=0)
        self.token_burst = settings.float_setting("RATE_LIMIT_BURST", 200, minimum=0)
        self.per_address = settings.float_setting("RATE_LIMIT_PER_ADDRESS", 10, minimum=0)
        self.address_burst = settings.float_setting("RATE_LIMIT_ADDRESS_BURST", 50, minimum=0)


def taken_at_once(rate: float, burst: float) -> int:
    """How many tokens a check takes from the shared bucket: one, or a few for a limit high
    enough that a few are a small part of a second's worth and of the burst."""
    return max(1, min(MOST_TAKEN_AHEAD, int(rate / 10), int(burst / 10)))


class TakenAhead:
    """The tokens this process took from the shared buckets ahead of its callers' requests,
    by bucket, each kept until `kept_for` seconds after it was taken; and the buckets Redis
    found empty, none until a token has refilled (no process can take one before then).

    Example: `keep("staff:7", 4)`, then `take("staff:7")` is True four times within the
    second, False after; `note_empty("addr:10.0.0.9", 0.1)`, then `empty_for(...)` is the
    time left of that tenth of a second.
    """

    # past this many buckets, those whose tokens ran out of time are forgotten
    SWEEP_ABOVE = 1000

    def __init__(self, kept_for: float = KEPT_AHEAD_SECONDS, clock=time.monotonic):
        self.kept_for = kept_for
        self.clock = clock
        self._left: dict[str, tuple[int, float]] = {}

    def __len__(self) -> int:
        return len(self._left)

    def take(self, key: str) -> bool:
        left, until = self._left.get(key, (0, 0.0))
        if not left:
            return False  # none kept, or the bucket is empty
        if self.clock() >= until:
            del self._left[key]
            return False
        if left == 1:
            del self._left[key]
        else:
            self._left[key] = (left - 1, until)
        return True

    def keep(self, key: str, count: int) -> None:
        if count < 1:
            return
        now = self.clock()
        left, until = self._left.get(key, (0, 0.0))
        # two checks that found none left may both have taken some: keep both's
        self._remember(key, count + (left if now < until else 0), now + self.kept_for, now)

    def note_empty(self, key: str, seconds: float) -> None:
        now = self.clock()
        self._remember(key, 0, now + seconds, now)

    def empty_for(self, key: str) -> float:
        """Seconds until the bucket has a token again, if Redis found it empty; else 0."""
        left, until = self._left.get(key, (1, 0.0))
        return max(0.0, until - self.clock()) if left == 0 else 0.0

    def _remember(self, key: str, left: int, until: float, now: float) -> None:
        self._left[key] = (left, until)
        if len(self._left) > self.SWEEP_ABOVE:
            self._left = {k: v for k, v in self._left.items() if now < v[1]}


class RateLimiter(DependencyProvider):
    def setup(self):
        self.limits = Limits()
        self.prefix = settings.env("RATE_LIMIT_PREFIX", "hotelcs:rate")
        self.url = settings.redis_url()
        self.clients = KeptOpen(self._client, close=lambda take: take.registered_client.close())
        self.taken_ahead = TakenAhead()
        # a bucket's check asking Redis for tokens, which the caller's other checks await
        self.asking: dict[str, Signal] = {}

    def get_dependency(self, worker_ctx):
        return self

    def _client(self) -> Script:
        client = redis.Redis.from_url(
            self.url, socket_timeout=0.5, socket_connect_timeout=0.5, single_connection_client=True
        )
        return client.register_script(_TAKE_TOKENS)

    def stop(self):
        self.clients.close()

    def check(self, request, principal) -> None:
        """Raise 429 `RATE_LIMITED` (with `Retry-After`) when the caller is over its limit."""
        if principal is not None:
            rate, burst = self.limits.per_token, self.limits.token_burst
            key = f"{self.prefix}:staff:{principal.subject}"
        else:
            rate, burst = self.limits.per_address, self.limits.address_burst
            key = f"{self.prefix}:addr:{request.remote_addr}"
        if rate <= 0:
            return
        if empty_for := self.taken_ahead.empty_for(key):
            raise _refusal(empty_for)  # an empty bucket: no need to ask Redis again yet
        at_once = taken_at_once(rate, burst)
        while not self.taken_ahead.take(key):
            asking = self.asking.get(key)
            if asking is None or at_once == 1:
                outcome = self._ask(key, rate, burst, at_once)
                if outcome is True:
                    return
            else:
                # Another of the caller's requests is asking Redis for a few tokens: share
                # its answer. Asking too would take more than the caller needs at once,
                # and with a burst nearly spent, refuse requests the tokens kept will pay.
                outcome = asking.wait()
                if outcome is True:
                    continue  # one of the tokens it kept, if another has not taken the last
            if outcome is _REDIS_AWAY:
                return
            raise _refusal(outcome)

    def _ask(self, key: str, rate: float, burst: float, at_once: int) -> bool | float | str:
        """Take up to `at_once` tokens from the caller's bucket in Redis, one for this
        request and the rest kept: True, or the seconds until there is a token, or
        `_REDIS_AWAY` if Redis could not be asked."""
        asking = Signal() if at_once > 1 else None
        if asking is not None:
            self.asking[key] = asking
        outcome: bool | float | str = _REDIS_AWAY
        try:
            # a new client connects as it is made: Redis may be away then too
            with self.clients.use() as take:
                taken, wait = take(keys=[key], args=[rate, burst, time.time(), at_once])
            if int(taken):
                self.taken_ahead.keep(key, int(taken) - 1)
                outcome = True
            else:
                outcome = float(wait)
                self.taken_ahead.note_empty(key, outcome)
        except redis.RedisError:
            log.warning("rate limiter cannot reach Redis; letting the request through")
        finally:
            if asking is not None:
                del self.asking[key]
                asking.send(outcome)
        return outcome


def _refusal(wait: float) -> Exception:
    from gateway.http import HttpError

    error = HttpError("RATE_LIMITED", "too many requests; slow down")
    error.headers["Retry-After"] = str(max(1, math.ceil(wait)))
    return error
