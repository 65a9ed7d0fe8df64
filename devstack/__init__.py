"""Local stack tooling for `make run`, `make test` and `make demo`: find or start Redis, pick
ports, and run web + worker + beat under honcho. Not imported by the apps."""
