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
	bash scripts/start_daemons.sh
	mkdir -p runs/bench
	.venv/bin/python benchmarks/step_overhead.py --out runs/bench/step_overhead.json
	.venv/bin/python benchmarks/trajectory_io.py
	.venv/bin/python benchmarks/model_packing.py --out runs/bench/model_packing.json
	.venv/bin/python benchmarks/agent_context_reuse.py --out runs/bench/agent_context_reuse.json
	.venv/bin/python benchmarks/decode_speed.py --out runs/bench/decode_speed.json
	.venv/bin/python benchmarks/train_throughput.py
	# the same with a docker desktop run (1024x768) pooled in: mixed screen sizes, as collected in practice
	bash scripts/build_docker_image.sh >/dev/null
	.venv/bin/pixelpilot collect --suite docker --tasks terminal-file --episodes 16 --out runs/bench/docker_run --resume
	.venv/bin/python benchmarks/train_throughput.py --run out/bench/train_run --run runs/bench/docker_run \
		--mix trajectories --nproc-steps 0 --out runs/bench/train_throughput_mixed.json
	.venv/bin/python benchmarks/env_reset.py --out runs/bench/env_reset.json

clean:
	rm -rf .venv build *.egg-info .pytest_cache
