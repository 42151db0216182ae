"""The kit every service of the suite is built on.

It holds the bus contract (the event envelope and one schema per integration event,
the exchanges and queues that carry them) and the mechanisms every service shares:
the transactional outbox and its relay, idempotent event consumption and commands,
database sessions, settings, structured logging and Prometheus metrics.
Business rules never live here; they live in each service's plain modules.
"""
