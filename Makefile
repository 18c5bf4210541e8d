# The two commands of the README. Both create .venv and install the project on first use.
.PHONY: run test
run:
	bash scripts/run
test:
	bash scripts/test
