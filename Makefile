# Two entry points: `make demo` (set up + run the main job) and `make test` (set up + all tests).
.PHONY: setup daemons demo test bench clean

setup:
	bash scripts/setup.sh

daemons:
	bash scripts/start_daemons.sh

demo: setup
	.venv/bin/pixelpilot demo

test:
	bash scripts/test.sh

bench: setup
	.venv/bin/python benchmarks/step_overhead.py

clean:
	rm -rf .venv build *.egg-info .pytest_cache
