# The two commands of the README's Quick start. Each installs what is missing first.
.PHONY: demo test bootstrap lint

VENV := .venv/bin

bootstrap:
	@bash scripts/bootstrap.sh

demo: bootstrap
	@$(VENV)/workbench demo

lint: bootstrap
	@echo "gate: ruff check"
	@$(VENV)/ruff check .
	@echo "gate: ruff format --check"
	@$(VENV)/ruff format --check .
	@echo "gate: mypy --strict (workbench, faults, checkers)"
	@$(VENV)/mypy

test: lint
	@bash scripts/run-tests.sh
