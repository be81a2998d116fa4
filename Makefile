# One entry point for users and developers. The first target that needs it
# creates .venv/ with every backend and test dependency at pinned versions.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BACKENDS := jax tensorflow torch
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: venv demo test test-fast clean

$(BIN)/.installed: requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

venv: $(BIN)/.installed

demo: venv
	$(BIN)/siglip2 demo $(ARGS)

# The full suite on JAX, then the backend-sensitive tests on TensorFlow and torch.
test: venv
	KERAS_BACKEND=jax $(BIN)/python -m pytest -q $(PYTEST_ARGS)
	KERAS_BACKEND=tensorflow $(BIN)/python -m pytest -q -m backends $(PYTEST_ARGS)
	KERAS_BACKEND=torch $(BIN)/python -m pytest -q -m backends $(PYTEST_ARGS)

test-fast: venv
	KERAS_BACKEND=jax $(BIN)/python -m pytest -q -m "not slow" $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
