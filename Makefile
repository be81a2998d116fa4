# Shortcuts for dev.py, which needs only Python (it creates .venv/ on first use).
.PHONY: demo test docs venv
demo:
	python3 dev.py demo $(ARGS)
test:
	python3 dev.py test $(ARGS)
docs:
	python3 dev.py docs
venv:
	python3 dev.py venv
