# Every target is one command a user could type; see README.md.
PY ?= python
TASK ?= listops
BENCH_STEP_ARGS ?= --compile none
ATTENTION ?= softmax

.PHONY: install test test-all train sweep data campaign results speed-readme bench bench-gpu bench-step lint format clean

install:  ## install (CPU torch pinned) and run the default job
	pip install torch==2.13.0 -e ".[dev]" && $(PY) train.py

test:     ## the default test run (what CI runs)
	$(PY) -m pytest

test-all: ## include the slow tests
	$(PY) -m pytest -m "slow or not slow"

train:    ## one run: make train TASK=pathfinder ATTENTION=performer
	$(PY) train.py task=$(TASK) attention=$(ATTENTION)

sweep:    ## the LST transform grid on ListOps and Pathfinder, 3 seeds
	$(PY) train.py -m attention=lst attention.transform_type=dct,dst,hadamard \
		task=listops,pathfinder seed=0,1,2

data:     ## generate ListOps (full size) and Pathfinder-32 (hard) locally
	$(PY) -m experiments.data listops --size full
	$(PY) -m experiments.data pathfinder --resolution 32 --difficulty curv_contour_length_14 --size full

campaign: ## what is missing of conf/campaign/lra.yaml on this machine's GPUs (see ARGS)
	$(PY) scripts/campaign.py $(ARGS)

results:  ## aggregate every metrics.json into results/*.md, *.csv, *.png
	$(PY) -m experiments.results

speed-readme: ## rewrite README.md's speed table from results/scaling.csv and scaling.md
	$(PY) -m experiments.speed_readme --scaling results --readme README.md

bench:    ## scaling benchmark on this machine (CPU)
	bash scripts/bench_cpu.sh

bench-gpu: ## scaling benchmark on a CUDA machine
	bash scripts/bench_gpu.sh

bench-step: ## LRA-config training step of every mixer vs a plain SDPA encoder -> results/train_step.*
	$(PY) -m experiments.bench_step $(BENCH_STEP_ARGS)

lint:
	ruff check .
	ruff format --check .

format:
	ruff check --fix .
	ruff format .

clean:
	rm -rf outputs multirun .pytest_cache .ruff_cache
