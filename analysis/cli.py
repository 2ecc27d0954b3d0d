"""Command line of `python3 -m analysis`: report, leaderboard, hl.

Errors are one line on stderr, `analysis: error: ...`, naming the file at
fault, with exit status 1 (2 for usage errors).
"""
import argparse
import os
import sys
import time

from analysis.results import ResultsError, Sweep

USAGE = """python3 -m analysis report OUTDIR -o REPORTDIR [--bootstrap N] [-g G] [--seed S]
       python3 -m analysis leaderboard OUTDIR [--csv FILE] [--by val_acc|test_acc|test_auc]
       python3 -m analysis hl OUTDIR --trial ID [-g G] [--split test|val]"""


def _parser():
    p = argparse.ArgumentParser(prog="python3 -m analysis", usage=USAGE,
                                description="Leaderboard, statistics and an HTML report from a ctsweep results "
                                            "directory.")
    sub = p.add_subparsers(dest="cmd", metavar="{report,leaderboard,hl}")
    r = sub.add_parser("report", help="write REPORTDIR/index.html and its figures")
    r.add_argument("outdir", metavar="OUTDIR")
    r.add_argument("-o", "--output", metavar="REPORTDIR", required=True)
    r.add_argument("--bootstrap", type=int, default=2000, metavar="N",
                   help="stratified bootstrap resamples for the intervals (>= 2000; default 2000)")
    r.add_argument("-g", type=int, default=10, help="Hosmer-Lemeshow groups (default 10)")
    r.add_argument("--seed", type=int, default=0, help="added to every trial's bootstrap seed (default 0)")
    lb = sub.add_parser("leaderboard", help="print one row per trial; optionally write CSV")
    lb.add_argument("outdir", metavar="OUTDIR")
    lb.add_argument("--csv", metavar="FILE", help="also write the rows as CSV to FILE ('-' for stdout only)")
    lb.add_argument("--by", choices=("val_acc", "test_acc", "test_auc"), default="val_acc",
                    help="sort key, best first (default val_acc: the best val accuracy of each trial)")
    lb.add_argument("--bootstrap", type=int, default=2000, metavar="N", help=argparse.SUPPRESS)
    h = sub.add_parser("hl", help="Hosmer-Lemeshow test of one trial, as R's ResourceSelection::hoslem.test")
    h.add_argument("outdir", metavar="OUTDIR")
    h.add_argument("--trial", required=True, metavar="ID", help="trial id (or a unique prefix)")
    h.add_argument("-g", type=int, default=10, help="groups (default 10)")
    h.add_argument("--split", choices=("test", "val"), default="test",
                   help="test (final epoch; default) or val (final epoch)")
    return p


def _cmd_report(a):
    from analysis.report import write_report
    t0 = time.time()
    sweep = Sweep(a.outdir)
    path, rep = write_report(sweep, a.output, n_boot=a.bootstrap, g=a.g, seed=a.seed)
    bad = rep.sev.failed_checks()
    for w in rep.warnings[:5]:
        print(f"analysis: warning: {w}", file=sys.stderr)
    for tid, name, detail in bad[:5]:
        print(f"analysis: warning: trial {tid}: {name}: {detail}", file=sys.stderr)
    c = sweep.status_counts()
    print(f"report: {path} ({c['done']} done, {c['running']} running, {c['pending']} pending, {c['failed']} failed; "
          f"sweep {sweep.state}; {time.time() - t0:.1f} s)")
    return 0


def _cmd_leaderboard(a):
    from analysis import leaderboard
    from analysis.evaluate import SweepEval
    sev = SweepEval(Sweep(a.outdir), n_boot=a.bootstrap)
    if a.csv == "-":
        sys.stdout.write(leaderboard.csv_text(sev, a.by))
        return 0
    sys.stdout.write(leaderboard.text(sev, a.by))
    if a.csv:
        tmp = a.csv + ".tmp"
        with open(tmp, "w") as f:
            f.write(leaderboard.csv_text(sev, a.by))
        os.replace(tmp, a.csv)
        print(f"csv: {a.csv}")
    return 0


def _cmd_hl(a):
    from analysis import calibration
    sweep = Sweep(a.outdir)
    t = sweep.find_trial(a.trial)
    if t.file_error:
        raise ResultsError(t.file_error)
    if a.split == "test":
        if not t.done:
            raise ResultsError(f"trial {t.trial_id} is {t.status}: it has no test probabilities yet "
                               f"(try --split val)")
        y, p, what = sweep.y(t.test_index), t.test_prob, f"test set at the final epoch ({t.epochs_done})"
    else:
        if not len(t.val_prob):
            raise ResultsError(f"trial {t.trial_id} has no epoch recorded yet")
        y, p, what = sweep.y(t.val_index), t.val_prob[-1], f"val set after epoch {t.epochs_done}"
    hl = calibration.hosmer_lemeshow(y, p, g=a.g)
    print(calibration.format_hl(hl, data=f"truth and P(positive) of trial {t.trial_id} ({t.model}), {what}, "
                                         f"n = {len(y)}"))
    return 0


def main(argv):
    p = _parser()
    a = p.parse_args(argv)
    if not a.cmd:
        p.print_usage(sys.stderr)
        return 2
    try:
        if a.cmd == "report":
            return _cmd_report(a)
        if a.cmd == "leaderboard":
            return _cmd_leaderboard(a)
        return _cmd_hl(a)
    except (ResultsError, ValueError, OSError) as e:
        print(f"analysis: error: {e}", file=sys.stderr)
        return 1
