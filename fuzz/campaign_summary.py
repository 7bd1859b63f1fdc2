#!/usr/bin/env python3
"""The JSON summary and plots of one fuzz/campaign.sh run, from the engines'
own statistics: libFuzzer's status lines (-fork mode: "#N: cov: .. ft: ..
corp: .. exec/s: .. oom/timeout/crash: a/b/c time: Ts") and its
-print_final_stats "stat::" lines; AFL++'s fuzzer_stats of every instance (the
numbers afl-whatsup sums) and plot_data (afl-plot draws it).

    campaign_summary.py OUT_DIR ENGINE TARGET...

Writes OUT_DIR/summary.json; per target OUT_DIR/<t>/progress.tsv and
progress.png (libFuzzer: coverage, features and execs/s over time, gnuplot) or
OUT_DIR/<t>/plot/ (afl-plot of the main instance). Crashes come from the
triage log (fuzz/triage/triage.sh): dedup name, verdict, regression file."""
import json
import os
import re
import shutil
import subprocess
import sys


def libfuzzer_stats(work):
    log = os.path.join(work, "fuzzer.log")
    series, final, stats = [], {}, {}
    line_re = re.compile(r"^#(\d+): cov: (\d+) ft: (\d+) corp: (\d+) exec/s: (\d+) oom/timeout/crash: "
                         r"(\d+)/(\d+)/(\d+) time: (\d+)s")
    # Without -fork: "#N  NEW/REDUCE/pulse  cov: C ft: F corp: K/.. exec/s: E".
    plain_re = re.compile(r"^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)/\S+ .*exec/s: (\d+)")
    if os.path.exists(log):
        with open(log, errors="replace") as f:
            for line in f:
                m = line_re.match(line)
                if m:
                    n, cov, ft, corp, eps, oom, tmo, crash, t = map(int, m.groups())
                    series.append((t, n, cov, ft, eps, corp))
                    final = {"execs": n, "execs_per_sec": eps, "coverage": cov, "features": ft,
                             "corpus_size": corp, "ooms": oom, "timeouts": tmo, "crashes_seen": crash,
                             "seconds": t}
                    continue
                m = plain_re.match(line)
                if m:
                    n, cov, ft, corp, eps = map(int, m.groups())
                    t = series[-1][0] + 1 if series else 0
                    series.append((t, n, cov, ft, eps, corp))
                    final = {"execs": n, "execs_per_sec": eps, "coverage": cov, "features": ft, "corpus_size": corp}
                    continue
                if line.startswith("stat::"):
                    k, _, v = line.partition(":")[2].lstrip(":").partition(":")
                    try:
                        stats[k.strip()] = int(v.strip())
                    except ValueError:
                        pass
    if "number_of_executed_units" in stats:
        final["execs"] = max(final.get("execs", 0), stats["number_of_executed_units"])
    if "average_exec_per_sec" in stats:
        final.setdefault("execs_per_sec", stats["average_exec_per_sec"])
    if stats:
        final["final_stats"] = stats
    return final, series


def plot_libfuzzer(work, target, series):
    if not series:
        return None
    tsv = os.path.join(work, "progress.tsv")
    with open(tsv, "w") as f:
        f.write("# seconds\texecs\tcoverage\tfeatures\texecs_per_sec\tcorpus\n")
        for row in series:
            f.write("\t".join(map(str, row)) + "\n")
    if not shutil.which("gnuplot"):
        return None
    png = os.path.join(work, "progress.png")
    script = f"""set terminal pngcairo size 900,500 noenhanced
set output '{png}'
set title '{target}: libFuzzer coverage and speed'
set xlabel 'seconds'
set ylabel 'coverage (edges), features'
set y2label 'execs/s'
set ytics nomirror
set y2tics
set key left top
plot '{tsv}' using 1:3 with lines title 'cov', '' using 1:4 with lines title 'ft', '' using 1:5 axes x1y2 with lines title 'exec/s'
"""
    r = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    if r.returncode != 0:
        # gnuplot-nox may lack pngcairo: the plain png terminal then.
        r = subprocess.run(["gnuplot"], input=script.replace("pngcairo", "png"), text=True, capture_output=True)
    return png if r.returncode == 0 and os.path.exists(png) else None


def afl_stats(work):
    instances, total = {}, {"execs": 0, "execs_per_sec": 0.0, "crashes_seen": 0, "hangs": 0}
    afl = os.path.join(work, "afl")
    for name in sorted(os.listdir(afl)) if os.path.isdir(afl) else []:
        path = os.path.join(afl, name, "fuzzer_stats")
        if not os.path.exists(path):
            continue
        s = {}
        with open(path) as f:
            for line in f:
                k, _, v = line.partition(":")
                s[k.strip()] = v.strip()
        inst = {"execs": int(s.get("execs_done", 0)), "execs_per_sec": float(s.get("execs_per_sec", 0)),
                "corpus_size": int(s.get("corpus_count", 0)), "coverage": s.get("bitmap_cvg", ""),
                "edges_found": int(s.get("edges_found", 0) or 0),
                "crashes_seen": int(s.get("saved_crashes", s.get("unique_crashes", 0))),
                "hangs": int(s.get("saved_hangs", s.get("unique_hangs", 0)))}
        instances[name] = inst
        for k in ("execs", "execs_per_sec", "crashes_seen", "hangs"):
            total[k] += inst[k]
    main = instances.get("main", next(iter(instances.values()), {}))
    total.update({"coverage": main.get("coverage", ""), "features": main.get("edges_found", 0),
                  "corpus_size": main.get("corpus_size", 0), "instances": instances})
    return total


def plot_afl(work):
    main = os.path.join(work, "afl", "main")
    if not shutil.which("afl-plot") or not os.path.exists(os.path.join(main, "plot_data")):
        return None
    dest = os.path.join(work, "plot")
    r = subprocess.run(["afl-plot", main, dest], capture_output=True, text=True)
    if r.returncode == 0:
        return dest
    # e.g. "plot_data carries too little data" after a short run
    errors = [l for l in (r.stdout + r.stderr).splitlines() if "Error" in l]
    return {"afl-plot failed": errors[-1].strip() if errors else r.returncode}


def crashes(work, out):
    found = []
    log = os.path.join(work, "triage.log")
    if not os.path.exists(log):
        return found
    with open(log, errors="replace") as f:
        for line in f:
            parts = line.split(None, 2)
            if len(parts) < 2 or parts[0] not in ("new", "duplicate", "known"):
                continue
            key = parts[1]
            rest = parts[2].strip() if len(parts) > 2 else ""
            found.append({"status": parts[0], "dedup_key": key.split("/", 1)[-1], "verdict": rest,
                          "regression_file": os.path.join(out, "regressions", key) if parts[0] == "new"
                          else os.path.join("corpus", "regressions", key) if parts[0] == "known" else None})
    return found


def main():
    out, engine, targets = sys.argv[1], sys.argv[2], sys.argv[3:]
    summary = {"engine": engine, "out": out, "targets": {}}
    meta = os.path.join(out, "campaign.json")
    if os.path.exists(meta):
        with open(meta) as f:
            summary.update(json.load(f))
    for t in targets:
        work = os.path.join(out, t)
        if not os.path.isdir(work):
            continue
        if engine == "libfuzzer":
            st, series = libfuzzer_stats(work)
            plot = plot_libfuzzer(work, t, series)
        else:
            st = afl_stats(work)
            plot = plot_afl(work)
        st["plot"] = plot
        st["crashes"] = crashes(work, out)
        merged = os.path.join(work, "merged")
        if os.path.exists(merged):
            with open(merged) as f:
                st["corpus_files_added"] = int(f.read().strip() or 0)
        corpus = os.path.join("corpus", t)
        st["shipped_corpus_files"] = len(os.listdir(corpus)) if os.path.isdir(corpus) else 0
        summary["targets"][t] = st
    path = os.path.join(out, "summary.json")
    with open(path, "w") as f:
        json.dump(summary, f, indent=2, sort_keys=True)
        f.write("\n")
    print(path)


if __name__ == "__main__":
    main()
