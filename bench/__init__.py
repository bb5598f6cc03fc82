"""The benchmark of the engine at scale (`make bench`, `python -m bench`): not application code.

It drives the system from outside, through the case service, the `sbu` commands, the registry and
Prefect's API, and no application module imports it. `bench.mix` says which cases are seeded,
`bench.seed` seeds them, `bench.system` starts the system, `bench.settle` says when it has settled,
`bench.build` holds what differs between builds, `bench.runner` measures one configuration, and
`bench.report` writes the results under `bench/results/`.
"""
