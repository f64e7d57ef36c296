# Two commands on a fresh machine: `make run` and `make test` (each sets up first).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup browser run test bench freeze clean

setup: $(STAMP)

# Re-install only when the pins or the project metadata change (idempotent).
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

run: setup
	$(BIN)/modelcompat run

# The HTML report is checked in a real headless Chromium (Debian's package); installed once, quietly.
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

# The corpus tests (tests/corpus) need .venv-corpus: built here (once, stamped) so they never skip.
test: setup browser corpus-env
	$(BIN)/pytest $(PYTEST_ARGS)

bench: setup corpus-env
	$(BIN)/python -m benchmarks

# Regenerate the pins from the current venv after a deliberate upgrade.
freeze: setup
	{ sed -n '1,3p' constraints.txt; echo "torch==2.13.0"; \
	  $(BIN)/python -m pip freeze --exclude-editable | grep -v -E '^(torch|modelcompat)=='; } > constraints.new
	mv constraints.new constraints.txt

clean:
	rm -rf $(VENV) .modelcompat

# The model corpus (corpus/) builds in its own venv: its torch/torchvision pins differ from the product's.
CORPUS_VENV  := .venv-corpus
CORPUS_STAMP := $(CORPUS_VENV)/.installed

.PHONY: corpus-env corpus
corpus-env: $(CORPUS_STAMP)

# Every corpus model checked on the nightly matrix with every validator; writes the verdict table docs/corpus.md.
# Then torch files across torch releases (an older torch in a venv: ~3 GB downloaded once): docs/torch-releases.md.
corpus: setup corpus-env
	$(BIN)/python -m corpus.verdicts --matrix nightly --out docs/corpus.md
	$(BIN)/python -m corpus.torch_releases --out docs/torch-releases.md

$(CORPUS_STAMP): corpus/requirements.txt
	test -x $(CORPUS_VENV)/bin/python || $(PYTHON) -m venv $(CORPUS_VENV)
	$(CORPUS_VENV)/bin/python -m pip install --quiet --upgrade "pip>=25"
	$(CORPUS_VENV)/bin/python -m pip install --quiet -r corpus/requirements.txt
	touch $(CORPUS_STAMP)
