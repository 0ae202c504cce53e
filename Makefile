# Entry points; the benchmark is described in docs/performance.md.
PYTHON ?= .venv/bin/python

.PHONY: bench bench-quick test soak

bench:          ## the full benchmark (under ten minutes on 2 cores): table + bench/results.json
	$(PYTHON) -m bench

bench-quick:    ## a smaller run, under a minute
	$(PYTHON) -m bench --quick

test:           ## lint, types and the whole suite on SQLite and PostgreSQL
	scripts/test.sh

soak:           ## the fault suite, long: 200 SIGKILLs, more fuzzing (needs SEALKEEPER_TEST_PG_URL)
	SEALKEEPER_SOAK=1 $(PYTHON) -m pytest -p no:cacheprovider tests/faults -x
