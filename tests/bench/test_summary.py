"""bench/summary.py on fixed inputs: medians, ratios to the limit and the best peer, and the verdicts of
issue 13's targets (met, NOT met, not measured), timed-out peers and old JSON without the new fields."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bench"))

import summary  # noqa: E402

MiB = 1 << 20
SYSTEMS = ["limit", "lakefuse", "rclone", "s3fs"]
WORKLOADS = ["w1-find-cold", "w2-cat-small", "w3-seq-cold", "w3-seq-remount", "w5-write-large", "w7-creates"]


def run(seconds, calls=1, **kw):
    return dict(seconds=seconds, calls=calls, cpu=0.1, rss=10 * MiB, **kw)


def results(over=None):
    """Three rounds per (workload, system); lakefuse meets every target unless `over` says otherwise."""
    base = {
        ("w1-find-cold", "limit"): [run(1.0), run(1.2), run(0.8)],
        ("w1-find-cold", "lakefuse"): [run(1.4, stat_object=0), run(1.5, stat_object=0), run(9.0, stat_object=0)],
        ("w1-find-cold", "rclone"): [run(10.0)] * 3,
        ("w1-find-cold", "s3fs"): [run(4.0)] * 3,
        ("w2-cat-small", "limit"): [run(1.0)] * 3,
        ("w2-cat-small", "lakefuse"): [run(0.9)] * 3,
        ("w2-cat-small", "rclone"): [{"error": "timed out after 60 s", "timed_out": 60}],
        ("w2-cat-small", "s3fs"): [run(3.0)] * 3,
        ("w3-seq-cold", "limit"): [run(1.0)] * 3,
        ("w3-seq-cold", "lakefuse"): [run(1.1)] * 3,
        ("w3-seq-remount", "limit"): [run(1.0)] * 3,
        ("w3-seq-remount", "lakefuse"): [run(0.5)] * 3,
        ("w5-write-large", "limit"): [run(1.0)] * 3,
        ("w5-write-large", "lakefuse"): [run(1.25)] * 3,
        ("w7-creates", "lakefuse"): [run(10.0, calls=2000, big_n=1000, small_n=100, small_seconds=0.9,
                                         small_calls=200)] * 3,
    }
    base.update(over or {})
    return base


def verdicts(res, workloads=WORKLOADS):
    med = summary.medians(res)
    return {t["target"]: t["met"] for t in summary.targets(med, SYSTEMS, workloads)}


def find(v, prefix):
    keys = [k for k in v if k.startswith(prefix)]
    assert len(keys) == 1, (prefix, keys)
    return v[keys[0]]


def test_medians_and_ratios():
    med = summary.medians(results())
    assert med["w1-find-cold", "lakefuse"]["seconds"] == 1.5
    assert med["w1-find-cold", "lakefuse"]["runs"] == 3
    assert med["w2-cat-small", "rclone"] == {"error": "timed out after 60 s", "timed_out": 60}
    s = summary.workload_summary(med, SYSTEMS, WORKLOADS)
    assert s["w1-find-cold"]["best_peer"] == "s3fs"
    assert abs(s["w1-find-cold"]["vs_best_peer"] - 4.0 / 1.5) < 1e-9
    assert abs(s["w1-find-cold"]["vs_limit"] - 1.0 / 1.5) < 1e-9
    # a timed-out peer is not the best peer; the one that finished is
    assert s["w2-cat-small"]["best_peer"] == "s3fs"
    assert s["w2-cat-small"]["peers_timed_out"] == ["rclone"]
    assert s["w3-seq-cold"]["best_peer"] is None and s["w3-seq-cold"]["vs_best_peer"] is None


def test_all_targets_met():
    v = verdicts(results())
    assert find(v, "w1 cold find + stat: time") is True           # 1.5x the limit: on the threshold
    assert find(v, "w1 cold find + stat: statObject") is True
    assert find(v, "w2 cat") is True                               # 1.0 / 0.9 = 1.11x
    assert find(v, "w3 sequential read, cold") is True             # 0.91x
    assert find(v, "w3 sequential read after") is True             # 2.0x
    assert find(v, "w5 large write (") is True                     # 0.8x
    assert find(v, "w5 large write: lakefuse peak RSS") is True
    assert find(v, "w7 per-create") is True                        # 10 ms vs 9 ms, 2 req vs 2 req
    assert find(v, "w1-find-cold: lakefuse ahead") is True
    assert find(v, "w2-cat-small: lakefuse ahead") is True         # rclone timed out, s3fs slower


def test_targets_not_met():
    v = verdicts(results({
        ("w1-find-cold", "lakefuse"): [run(1.6, stat_object=0), run(1.6, stat_object=3), run(1.6, stat_object=3)],
        ("w2-cat-small", "lakefuse"): [run(1.01)] * 3,
        ("w2-cat-small", "s3fs"): [run(1.0)] * 3,
        ("w3-seq-cold", "lakefuse"): [run(1.12)] * 3,
        ("w3-seq-remount", "lakefuse"): [run(0.51)] * 3,
        ("w5-write-large", "lakefuse"): [dict(run(1.0), rss=64 * MiB)] * 3,
        ("w7-creates", "lakefuse"): [run(12.0, calls=2000, big_n=1000, small_n=100, small_seconds=0.9,
                                         small_calls=200)] * 3,
    }))
    assert find(v, "w1 cold find + stat: time") is False
    assert find(v, "w1 cold find + stat: statObject") is False
    assert find(v, "w2 cat") is False
    assert find(v, "w3 sequential read, cold") is False
    assert find(v, "w3 sequential read after") is False
    assert find(v, "w5 large write (") is True
    assert find(v, "w5 large write: lakefuse peak RSS") is False   # 64 MiB is not < 64 MiB
    assert find(v, "w7 per-create") is False                       # 12 ms vs 9 ms: 1.33x
    assert find(v, "w2-cat-small: lakefuse ahead") is False        # s3fs 1.0 s < lakefuse 1.01 s
    assert find(v, "w1-find-cold: lakefuse ahead") is True


def test_w7_more_requests_per_create_in_the_big_directory_is_not_met():
    v = verdicts(results({("w7-creates", "lakefuse"): [
        run(9.0, calls=3000, big_n=1000, small_n=100, small_seconds=0.9, small_calls=200)]}))
    assert find(v, "w7 per-create") is False


def test_lakefuse_failing_is_not_ahead_and_not_met():
    v = verdicts(results({("w2-cat-small", "lakefuse"): [{"error": "Input/output error"}]}))
    assert find(v, "w2 cat") is False
    assert find(v, "w2-cat-small: lakefuse ahead") is False


def test_old_json_without_new_fields_is_not_measured():
    old = {k: [{kk: vv for kk, vv in r.items() if kk not in ("stat_object", "big_n", "small_n", "small_seconds",
                                                              "small_calls")} for r in runs]
           for k, runs in results().items()}
    v = verdicts(old)
    assert find(v, "w1 cold find + stat: statObject") is None
    assert find(v, "w7 per-create") is None
    assert find(v, "w2 cat") is True
    text, tg, _ = summary.render(summary.medians(old), SYSTEMS, WORKLOADS, {"rounds": 3}, {}, {})
    assert "not measured" in text and "## Targets" in text


def test_render_shows_ratios_verdicts_and_timeouts():
    med = summary.medians(results())
    text, tg, summ = summary.render(med, SYSTEMS, WORKLOADS, {"rounds": 3, "timeout": 60, "scale": "small"},
                                    dict((w, w) for w in WORKLOADS), {"rclone": ["--x"]})
    assert "| lakefuse vs best peer |" in text
    assert "2.67× (s3fs)" in text                    # w1: s3fs 4.0 s / lakefuse 1.5 s
    assert "0 statObject" in text
    assert "timed out after 60 s" in text
    assert "**NOT met**" not in text
    n = sum(1 for t in tg if t["met"])
    assert "%d of %d measured targets met." % (n, n) in text
    assert "| lakefuse | 1000, 10.00 ms, 2.00 req | 100, 9.00 ms, 2.00 req | 1.11× |" in text


def test_a_peer_in_fewer_rounds_is_compared_with_lakefuses_runs_of_the_same_rounds():
    """Peers take part in the first rounds only: lakefuse is compared with them over those rounds (its
    median over all rounds may come from a slower machine later)."""
    res = results({("w3-seq-cold", "lakefuse"): [run(0.46), run(0.54), run(0.50)],
                   ("w3-seq-cold", "s3fs"): [run(0.497)],
                   ("w3-seq-cold", "rclone"): [run(0.64)]})
    med = summary.medians(res)
    assert med["w3-seq-cold", "lakefuse"]["seconds"] == 0.50
    assert summary.secs_against(med, "w3-seq-cold", "lakefuse", "s3fs") == 0.46
    s = summary.workload_summary(med, SYSTEMS, WORKLOADS)
    assert s["w3-seq-cold"]["best_peer"] == "s3fs"
    assert abs(s["w3-seq-cold"]["vs_best_peer"] - 0.497 / 0.46) < 1e-9
    v = verdicts(res)
    assert find(v, "w3-seq-cold: lakefuse ahead") is True
    # behind in the same round: not met, whatever the later rounds say
    res = results({("w3-seq-cold", "lakefuse"): [run(0.55), run(0.40), run(0.45)],
                   ("w3-seq-cold", "s3fs"): [run(0.50)]})
    assert find(verdicts(res), "w3-seq-cold: lakefuse ahead") is False
    # peers in every round: the medians over all of them, as before
    res = results({("w3-seq-cold", "lakefuse"): [run(0.55), run(0.40), run(0.45)],
                   ("w3-seq-cold", "s3fs"): [run(0.50)] * 3})
    assert find(verdicts(res), "w3-seq-cold: lakefuse ahead") is True
