"""A stopped service gives its database connections back: PostgreSQL has a fixed number of
them (100 by default), and a process that restarts its containers, or a test run that
starts hundreds, must not run it out."""

from tests.reliability.faults import query
from tests.support import TEST_DB_PREFIX, every_service


def open_connections() -> int:
    return query(
        "gateway",
        "select count(*) from pg_stat_activity where datname like :prefix "
        "and application_name = 'hotelcs'",
        prefix=f"{TEST_DB_PREFIX}\\_%",
    )[0][0]


def test_stopped_containers_give_their_database_connections_back(runner_factory, suite_config):
    everything = every_service()
    before = open_connections()
    running = []
    for end in ("stop", "kill", "stop"):
        runner = runner_factory(*everything)
        runner.start()
        running.append(open_connections())
        getattr(runner, end)()
    after = open_connections()
    print(f"\ndatabase connections: {before} before, {running} while running, {after} after")
    assert after <= before
