"""`make bench` and `make soak`: the suite measured end to end on the machine it runs on.

One module per concern:

- `config`: the bench's settings (`BENCH_*` variables) and the environment of its suite;
- `suite`: provisions its own databases and vhost, starts the suite as `make run` does,
  finds its processes, stops it;
- `seed`: bulk data with `COPY`, into each service's database and the projections;
- `load`: HTTP load at N connections (wrk with `wrk/*.lua`, or a Python fallback);
- `probes`: PostgreSQL's raw insert rate (pgbench), event latency from the rows'
  timestamps, each process's memory and CPU time;
- `report`: `bench/results.json` and the printed table;
- `run` (`make bench`) and `soak` (`make soak`): the two commands.
"""
