"""Helpers shared by the tests: `httpserver` (loopback HTTP and raw TCP servers, also used by
bench/), `network` (the loopback tripwire, fake resolvers), `virtual_time` (clocks and sleeps
that take no real time), `workers` (a worker pool without processes), `pipelines`, `processes`,
`cluster` (a PostgreSQL cluster of a test's own) and `paths`. Fixtures are in tests/conftest.py."""
