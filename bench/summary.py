"""What bench/bench.py reports, from the runs it recorded: medians, the ratios to the limit and to the
best peer, the issue's targets (issue 13, "Done when") with met / NOT met, and the markdown page.

Pure functions of the recorded runs (no servers, no files) so that `--from-json` re-renders old and
new results alike and tests/bench/test_summary.py can check the verdicts on fixed inputs.

Ratios are "speed" ratios as in the table: the other's time / this system's time (1.0 = as fast,
above 1 = faster). A run that hit the per-run timeout is recorded as {"error": "timed out after N s",
"timed_out": N}: a result (the system took longer than N s), not a failure of the benchmark.
"""
import statistics

MiB = 1 << 20
PEER_SYSTEMS = ("rclone", "s3fs")
NOT_PEERS = ("limit", "lakefuse", "lakefuse-async")

# The thresholds, in one place (README "Performance" and results.md quote them from here).
W1_COLD_MAX_VS_LIMIT = 1.5      # lakefuse's time at most 1.5x the limit's
W2_MIN_SPEED = 1.0              # at least as fast as the limit
W3_COLD_MIN_SPEED = 0.9
W3_REMOUNT_MIN_SPEED = 2.0
W5_LARGE_MIN_SPEED = 0.8
W5_LARGE_MAX_RSS = 64 * MiB
W7_MAX_GROWTH = 1.25            # per-create seconds, big directory / empty directory
W7_MAX_EXTRA_REQ = 0.1          # extra requests per create in the big directory

NUMERIC = ("seconds", "calls", "cpu", "rss", "stat_object", "small_seconds", "small_calls", "small_cpu",
           "small_n", "big_n", "big_cpu")


def medians(results):
    """{(workload, system): [run, ...]} -> {(workload, system): median of each figure over the runs
    that finished; or {"error": ..., "timed_out": N?} when none did}."""
    med = {}
    for key, runs in results.items():
        ok = [r for r in runs if "error" not in r]
        if not ok:
            last = runs[-1] if runs else {"error": "not run"}
            m = {"error": last.get("error", "not run")}
            if last.get("timed_out") is not None:
                m["timed_out"] = last["timed_out"]
            med[key] = m
            continue
        m = {}
        for k in NUMERIC:
            vals = [r[k] for r in ok if r.get(k) is not None]
            if vals:
                m[k] = statistics.median(vals)
            elif k in ("seconds", "calls", "cpu", "rss"):
                m[k] = None
        m["runs"] = len(ok)
        m["rounds"] = len(runs)
        timed_out = [r for r in runs if r.get("timed_out") is not None]
        if timed_out:
            m["timeouts"] = len(timed_out)
        med[key] = m
    # Peers may take part in the first rounds only: lakefuse's median over those rounds too, so that
    # it is compared with a peer under the conditions of the same rounds (runs are kept in round order).
    for (wl, peer), runs in results.items():
        if peer in NOT_PEERS:
            continue
        for who in ("lakefuse", "lakefuse-async"):
            own, m = results.get((wl, who)) or [], med.get((wl, who)) or {}
            if len(runs) >= len(own) or "error" in m:
                continue
            first = [r["seconds"] for r in own[:len(runs)] if "error" not in r and r.get("seconds")]
            if first:
                m.setdefault("seconds_first_rounds", {})[str(len(runs))] = statistics.median(first)
    return med


def secs(med, wl, system):
    return (med.get((wl, system)) or {}).get("seconds")


def secs_against(med, wl, system, peer):
    """system's seconds for comparing with peer: its median over the rounds the peer took part in
    (the first ones) when the peer ran in fewer rounds, else over all its runs."""
    m = med.get((wl, system)) or {}
    rounds = (med.get((wl, peer)) or {}).get("rounds")
    return (m.get("seconds_first_rounds") or {}).get(str(rounds)) or m.get("seconds")


def speed(med, wl, system, ref="limit"):
    """ref's time / system's time, or None when either did not finish."""
    a, b = secs(med, wl, ref), secs(med, wl, system)
    return a / b if a and b else None


def best_peer(med, wl, systems):
    """(peer, seconds) of the fastest peer that finished wl, or (None, None)."""
    done = [(secs(med, wl, s) / secs_against(med, wl, "lakefuse", s), s) for s in systems
            if s not in NOT_PEERS and secs(med, wl, s) and secs_against(med, wl, "lakefuse", s)]
    done += [(secs(med, wl, s), s) for s in systems  # lakefuse did not finish: the fastest
             if s not in NOT_PEERS and secs(med, wl, s) and not secs_against(med, wl, "lakefuse", s)]
    if not done:
        return None, None
    _, s = min(done)
    return s, secs(med, wl, s)


def workload_summary(med, systems, workloads):
    """Per workload: lakefuse's seconds, its speed against the limit and against the best peer."""
    out = {}
    for wl in workloads:
        peer, peer_t = best_peer(med, wl, systems)
        lf = secs(med, wl, "lakefuse")
        out[wl] = {
            "lakefuse_seconds": lf,
            "limit_seconds": secs(med, wl, "limit"),
            "vs_limit": speed(med, wl, "lakefuse"),
            "best_peer": peer,
            "best_peer_seconds": peer_t,
            "vs_best_peer": (peer_t / secs_against(med, wl, "lakefuse", peer)
                             if peer_t and secs_against(med, wl, "lakefuse", peer) else None),
            "peers_timed_out": [s for s in systems if s not in NOT_PEERS
                                and (med.get((wl, s)) or {}).get("timed_out") is not None],
        }
    return out


def _target(name, value, threshold, met):
    return {"target": name, "value": value, "threshold": threshold, "met": met}


def _x(v):
    return "%.2f×" % v


def targets(med, systems, workloads):
    """The issue's targets, each {target, value, threshold, met: True/False/None (not measured)}."""
    out = []
    lf = lambda wl: med.get((wl, "lakefuse")) or {}  # noqa: E731

    if "w1-find-cold" in workloads:
        sp = speed(med, "w1-find-cold", "lakefuse")
        if sp:
            out.append(_target("w1 cold find + stat: time against the limit (a flat paginated listing)",
                               "%s the limit's time" % _x(1 / sp), "≤ %s" % _x(W1_COLD_MAX_VS_LIMIT),
                               1 / sp <= W1_COLD_MAX_VS_LIMIT))
        else:
            out.append(_target("w1 cold find + stat: time against the limit", "not measured", "≤ 1.5×", None))
        so = lf("w1-find-cold").get("stat_object")
        out.append(_target("w1 cold find + stat: statObject requests by lakefuse",
                           "not measured (no per-operation counts)" if so is None else "%d" % round(so),
                           "0", None if so is None else round(so) == 0))

    def speed_target(wl, label, minimum, extra=None):
        if wl not in workloads:
            return
        sp = speed(med, wl, "lakefuse")
        if sp is None:
            why = (lf(wl).get("error") or "not measured")[:60]
            out.append(_target(label, why, "≥ %s the limit's speed" % _x(minimum), None if not lf(wl) else False))
            return
        out.append(_target(label, "%s the limit's speed" % _x(sp), "≥ %s" % _x(minimum), sp >= minimum))

    speed_target("w2-cat-small", "w2 cat of small files, cold", W2_MIN_SPEED)
    speed_target("w3-seq-cold", "w3 sequential read, cold", W3_COLD_MIN_SPEED)
    speed_target("w3-seq-remount", "w3 sequential read after a remount (data cache kept)", W3_REMOUNT_MIN_SPEED)
    speed_target("w5-write-large", "w5 large write (until lakeFS has it)", W5_LARGE_MIN_SPEED)
    if "w5-write-large" in workloads:
        rss = lf("w5-write-large").get("rss")
        out.append(_target("w5 large write: lakefuse peak RSS",
                           "not measured" if rss is None else "%.1f MiB" % (rss / MiB),
                           "< %d MiB" % (W5_LARGE_MAX_RSS // MiB), None if rss is None else rss < W5_LARGE_MAX_RSS))

    if "w7-creates" in workloads:
        m = lf("w7-creates")
        big_n, small_n = m.get("big_n"), m.get("small_n")
        if m.get("seconds") and big_n and m.get("small_seconds") and small_n:
            big_s, small_s = m["seconds"] / big_n, m["small_seconds"] / small_n
            big_r, small_r = m["calls"] / big_n, m["small_calls"] / small_n
            growth = big_s / small_s
            out.append(_target(
                "w7 per-create cost, big directory against an empty one",
                "%.2f ms and %.2f req per create in the big directory, %.2f ms and %.2f req in an empty one: "
                "%s" % (big_s * 1e3, big_r, small_s * 1e3, small_r, _x(growth)),
                "≤ %s the time, ≤ +%.1f req per create" % (_x(W7_MAX_GROWTH), W7_MAX_EXTRA_REQ),
                growth <= W7_MAX_GROWTH and big_r <= small_r + W7_MAX_EXTRA_REQ))
        else:
            out.append(_target("w7 per-create cost, big directory against an empty one",
                               "not measured (no empty-directory creates in these runs)",
                               "≤ %s" % _x(W7_MAX_GROWTH), None))

    # lakefuse as mounted by default, and with -o async_close where that ran (the small-file writes)
    for wl in workloads:
        peers = [s for s in systems if s not in NOT_PEERS]
        if not peers:
            continue
        for who, label in (("lakefuse", "lakefuse"), ("lakefuse-async", "lakefuse -o async_close")):
            if who != "lakefuse" and (wl, who) not in med:
                continue
            t = secs(med, wl, who)
            behind, parts = [], []
            for p in peers:
                pm = med.get((wl, p)) or {}
                pt = pm.get("seconds")
                if pt:
                    own = secs_against(med, wl, who, p)
                    parts.append("%s %.3g s" % (p, pt) + (" (%s %.3g s in the same rounds)" % (label, own)
                                                          if own and t and own != t else ""))
                    if own is None or own >= pt:
                        behind.append(p)
                elif pm.get("timed_out") is not None:
                    parts.append("%s timed out after %d s" % (p, pm["timed_out"]))
                    if t is None:
                        behind.append(p)
                else:
                    parts.append("%s could not do it" % p)
            value = ("%s %.3g s; " % (label, t) if t else "%s did not finish; " % label) + ", ".join(parts)
            out.append(_target("%s: %s ahead of every peer" % (wl, label), value, "faster than each peer that "
                               "finished", not behind))
    return out


def verdict(met):
    return "met" if met else ("not measured" if met is None else "**NOT met**")


def fmt(x, unit=""):
    if x is None:
        return "–"
    if unit == "MiB":
        return "%.0f" % (x / MiB)
    if x >= 100:
        return "%.0f" % x
    if x >= 10:
        return "%.1f" % x
    return "%.2f" % x if x >= 0.1 else "%.3f" % x


def cell(med, wl, s):
    m = med.get((wl, s)) or {}
    if "error" in m:
        if m.get("timed_out") is not None:
            return "timed out after %d s" % m["timed_out"]
        return "failed: %s" % m["error"][:80].replace("|", "/").replace("\n", " ")
    if not m:
        return "–"
    lim = secs(med, wl, "limit")
    t = m.get("seconds")
    out = fmt(t) + " s"
    if lim and t and s != "limit":
        out += " (%.2f×)" % (lim / t)
    out += "<br>%d req" % round(m["calls"]) if m.get("calls") is not None else "<br>– req"
    if m.get("cpu") is not None and s != "limit":
        out += ", %s cpu s" % fmt(m["cpu"])
    if m.get("rss") is not None:
        out += ", %s MiB" % fmt(m["rss"], "MiB")
    if wl.startswith("w1") and m.get("stat_object") is not None:
        out += "<br>%d statObject" % round(m["stat_object"])
    if m.get("timeouts"):
        out += " (%d of the runs timed out)" % m["timeouts"]
    return out


def render(med, systems, workloads, meta, titles, peer_settings):
    """results.md: the table (with lakefuse's ratio to the best peer) and the targets section."""
    sizes = meta.get("sizes", {})
    lines = ["# lakefuse benchmark", "",
             "%s, lakefuse at commit %s. Scale `%s` (%s), %d interleaved rounds%s, medians. Machine: %s." % (
                 meta.get("date", "?"), meta.get("commit", "?"), meta.get("scale", "?"),
                 ", ".join("%s=%s" % kv for kv in sizes.items()), meta.get("rounds", 0),
                 " (peers in the first %d)" % meta["peer_rounds"]
                 if meta.get("peer_rounds") is not None and meta["peer_rounds"] < meta.get("rounds", 0) else "",
                 meta.get("machine", "?")),
             "Versions: " + "; ".join("%s: %s" % kv for kv in sorted(meta.get("versions", {}).items())) + ".", ""]
    if meta.get("timeout"):
        lines += ["Each run of a peer is bounded by %d s (mounting and preparation included; twice that for "
                  "w1-find-warm, w3-seq-remount and w6-rm, which do their work twice; lakefuse and the limit get "
                  "three times as long): a run that takes longer is stopped and recorded as \"timed out after N s\", "
                  "and is not run again on that workload." % meta["timeout"], ""]
    if meta.get("elapsed"):
        lines += ["The whole run took %.0f s (seeding %.0f s)." % (meta["elapsed"], meta.get("seed_seconds", 0)), ""]
    lines += ["Seconds (lower is better); in brackets the ratio to the limit (time of the limit / time of the "
              "system: 1.0 = as fast as the limit, above 1 = faster). Then lakeFS requests (API + S3 gateway), "
              "the daemon's CPU seconds and peak RSS (MiB). The last column: the peer that finished closest to "
              "lakefuse and its time / lakefuse's time (above 1 = lakefuse faster). A peer that ran in fewer "
              "rounds is compared with lakefuse's median over the same rounds (conditions on a shared machine "
              "change between rounds); the targets section says so where that differs.", ""]
    summ = workload_summary(med, systems, workloads)
    has_peers = any(s not in NOT_PEERS for s in systems)
    lines += ["| workload | " + " | ".join(systems) + (" | lakefuse vs best peer |" if has_peers else " |"),
              "|" + "---|" * (len(systems) + 1 + (1 if has_peers else 0))]
    for wl in workloads:
        row = ["%s: %s" % (wl, titles.get(wl, wl))] + [cell(med, wl, s) for s in systems]
        if has_peers:
            w = summ[wl]
            if w["vs_best_peer"]:
                row.append("%.2f× (%s)" % (w["vs_best_peer"], w["best_peer"]))
            elif w["peers_timed_out"] and w["lakefuse_seconds"]:
                row.append("peers timed out")
            else:
                row.append("–")
        lines.append("| " + " | ".join(row) + " |")
    tg = targets(med, systems, workloads)
    if "w7-creates" in workloads:
        lines += [""] + w7_lines(med, systems)
    lines += ["", "## Targets (issue 13), from this run", "",
              "| target | value | threshold | verdict |", "|---|---|---|---|"]
    for t in tg:
        lines.append("| %s | %s | %s | %s |" % (t["target"], t["value"].replace("|", "/"), t["threshold"],
                                                 verdict(t["met"])))
    n_met = sum(1 for t in tg if t["met"])
    n_meas = sum(1 for t in tg if t["met"] is not None)
    lines += ["", "%d of %d measured targets met." % (n_met, n_meas)]
    missing = meta.get("missing_peers") or {}
    lines += ["", "Peers not run: " + ("; ".join("%s — %s" % kv for kv in sorted(missing.items())) or "none") + ".",
              "Peer settings: " + "; ".join("%s `%s`" % (k, " ".join(v)) for k, v in peer_settings.items()) + ".",
              ""]
    return "\n".join(lines) + "\n", tg, summ


def w7_lines(med, systems):
    """Workload 7's two halves: creates into the big directory, and into an empty one, same mount."""
    out = ["Workload 7 per create (same mount, same run): into the big directory / into an empty directory.", "",
           "| system | big directory: creates, ms and req per create | empty directory: creates, ms and req per "
           "create | time ratio |", "|---|---|---|---|"]
    any_row = False
    for s in systems:
        m = med.get(("w7-creates", s)) or {}
        if not (m.get("seconds") and m.get("big_n") and m.get("small_seconds") and m.get("small_n")):
            continue
        any_row = True
        b, e = m["seconds"] / m["big_n"], m["small_seconds"] / m["small_n"]
        out.append("| %s | %d, %.2f ms, %.2f req | %d, %.2f ms, %.2f req | %.2f× |" % (
            s, m["big_n"], b * 1e3, m["calls"] / m["big_n"], m["small_n"], e * 1e3,
            m["small_calls"] / m["small_n"], b / e))
    return out if any_row else []
