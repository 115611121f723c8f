"""bench.brokers: the order the brokers run in and the Kafka/Tansu summary of one run's figures."""

from __future__ import annotations

from bench.brokers import Figure, alternation, per_100k, ratio_rows, ratio_table


def test_brokers_alternate_round_by_round() -> None:
    assert alternation(["kafka", "tansu"], 2) == [(1, "kafka"), (1, "tansu"), (2, "kafka"), (2, "tansu")]
    assert alternation(["tansu", "kafka"], 0) == []


def test_cpu_per_100k_clients() -> None:
    assert per_100k({"processor": 7.0, "sink": 2.8}, 700_000) == {"processor": 1.0, "sink": 0.4}


def figure(round_: int, broker: str, rate: float, cpu: float, rss: float, ok: bool = True) -> Figure:
    return Figure(round_, broker, "e2e", "in-process", rate, 700_000 / rate, {"processor": 1.0}, cpu, rss, ok)


def test_ratios_are_of_the_means_per_broker() -> None:
    figures = [
        figure(1, "kafka", 60_000, 3.0, 900),
        figure(1, "tansu", 40_000, 1.0, 100),
        figure(2, "kafka", 50_000, 5.0, 1000),
        figure(2, "tansu", 60_000, 1.0, 140),
    ]
    [row] = ratio_rows(figures, "kafka", "tansu")
    assert (row["bench"], row["case"], row["ok"]) == ("e2e", "in-process", True)
    assert row["kafka"]["rate"] == 55_000 and row["tansu"]["rate"] == 50_000
    assert row["ratio"]["rate"] == 1.1
    assert row["ratio"]["broker_cpu_s"] == 4.0
    assert row["ratio"]["broker_peak_rss_mb"] == 7.92  # 950 / 120
    assert row["ratio"]["services_cpu_per_100k"] == 1.0
    assert "| e2e | in-process | 55,000 / 50,000 | 1.10 |" in ratio_table([row], "kafka", "tansu")


def test_a_failed_check_and_a_one_sided_case_show() -> None:
    figures = [figure(1, "kafka", 60_000, 3.0, 900, ok=False), figure(1, "tansu", 40_000, 0.0, 100)]
    figures.append(Figure(1, "kafka", "sink", "2 sink(s)", 100_000, 7.0))  # no Tansu figure: no ratio row
    rows = ratio_rows(figures, "kafka", "tansu")
    assert [(r["bench"], r["ok"]) for r in rows] == [("e2e", False)]
    assert rows[0]["ratio"]["broker_cpu_s"] is None  # nothing to divide by
    assert ratio_table(rows, "kafka", "tansu").endswith(" FAILED")
