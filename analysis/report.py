"""The HTML report: REPORTDIR/index.html with its figures (fig/*.png),
gallery thumbnails (thumbs/*.png), Grad-CAM overlays (cam/<trial>/*.png, from
`ctsweep predict --saliency`) and leaderboard.csv. The folder is
self-contained (no network, inline CSS and a few lines of JavaScript for
the sortable tables) and opens from disk.
"""
import datetime
import glob
import os
import shutil

import numpy as np

from analysis import figures, leaderboard, report_eval
from analysis.report_gallery import CSS as GALLERY_CSS, GALLERY_MAX, Galleries
from analysis.cv import CvSummary
from analysis.evaluate import SweepEval
from analysis.htmlfmt import ci, esc, f, img, p_value, pct, swatch


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0 auto;max-width:1320px;
padding:0 20px 60px;color:#1b1b1b;line-height:1.45}
h1{margin:18px 0 4px}h2{border-bottom:2px solid #ddd;padding-bottom:3px;margin-top:34px}
nav{background:#f6f6f6;padding:6px 10px;border-radius:6px;font-size:14px}nav a{margin-right:12px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}th,td{border:1px solid #d4d4d4;padding:3px 7px;
text-align:right;white-space:nowrap}th{background:#f0f0f0;position:sticky;top:0}td.l,th.l{text-align:left}
table.sortable th{cursor:pointer;user-select:none}table.sortable th[data-dir=asc]::after{content:" \\25B2"}
table.sortable th[data-dir=desc]::after{content:" \\25BC"}tr.best td{background:#fff6d6}tr.sel td{background:#eef6ff}
tr.failed td{color:#a00}.banner{padding:8px 12px;border-radius:6px;margin:10px 0;font-weight:600}
.done{background:#e5f5e5}.running{background:#fff3cd}.interrupted{background:#ffe0cc}.bad{background:#fde2e2}
.cap{font-size:13px;color:#444;max-width:1100px}img.fig{max-width:100%;border:1px solid #eee}
.swatch{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:4px;vertical-align:-1px}
pre{background:#f7f7f7;padding:8px;overflow:auto;font-size:12px}details{margin:6px 0}summary{cursor:pointer}
code{background:#f3f3f3;padding:0 3px}
.tablewrap{overflow:auto;max-height:80vh;margin:8px 0}.tablewrap table{margin:0}
.hl.unreliable{color:#888;background:#f4f4f4;padding:2px 8px;border-radius:6px}.hl.unreliable td{color:#999}
.hl-warning{color:#7a4b00}.note{font-size:11px;color:#666}.header-note{background:#fde2e2}
"""

JS = """
function openTarget() {
  var e = location.hash && document.getElementById(decodeURIComponent(location.hash.slice(1)));
  if (e && e.tagName === 'DETAILS') e.open = true;
}
window.addEventListener('hashchange', openTarget);
openTarget();
document.querySelectorAll('table.sortable').forEach(function (tbl) {
  var heads = tbl.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, col) {
    th.addEventListener('click', function () {
      var body = tbl.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      var asc = th.getAttribute('data-dir') !== 'asc';
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute('data-dir'); });
      th.setAttribute('data-dir', asc ? 'asc' : 'desc');
      var num = th.getAttribute('data-type') === 'num';
      rows.sort(function (a, b) {
        var x = a.cells[col].getAttribute('data-v'), y = b.cells[col].getAttribute('data-v');
        if (x === '' && y === '') return 0;
        if (x === '') return 1;
        if (y === '') return -1;
        if (num) { x = parseFloat(x); y = parseFloat(y); }
        return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""


# Short names used throughout this file.
_f, _pct, _p, _ci, _swatch, _img = f, pct, p_value, ci, swatch, img


class Report:
    def __init__(self, sweep, outdir, rule="val_auc", n_boot=2000, g=10, seed=0, auc_ci="delong", prevalence=None,
                 gallery_max=GALLERY_MAX, saliency=True, ctsweep=None):
        self.sweep = sweep
        self.dir = os.path.abspath(outdir)
        self.sev = SweepEval(sweep, rule=rule, n_boot=n_boot, g=g, seed=seed, auc_ci=auc_ci, prevalence=prevalence)
        self.cv = CvSummary(self.sev)
        self.ci_name = "DeLong" if auc_ci == "delong" else f"{n_boot}-resample stratified bootstrap"
        self.colours = figures.model_colours(sweep.models())
        self.gallery_max = gallery_max
        self.galleries = Galleries(self, want_cam=saliency, ctsweep=ctsweep, gallery_max=gallery_max)
        self.warnings = []

    # ---- files ----

    def _prepare(self):
        os.makedirs(self.dir, exist_ok=True)
        for sub in ("fig", "thumbs"):
            d = os.path.join(self.dir, sub)
            os.makedirs(d, exist_ok=True)
            for old in glob.glob(os.path.join(d, "*.png")):
                os.remove(old)
        shutil.rmtree(os.path.join(self.dir, "cam"), ignore_errors=True)

    def _fig(self, name):
        return os.path.join(self.dir, "fig", name), "fig/" + name

    fig = _fig

    def write(self):
        self._prepare()
        body = [self._header(), self._summary(), self._leaderboard(), report_eval.cross_validation(self),
                self._comparison(), self._roc(), self._confusion(), report_eval.calibration(self, self._selected()),
                self.galleries.html(self._selected(), self.colours), self._curves(), report_eval.hyper(self), self._problems(), self._checks(),
                self._methods(), self._config()]
        with open(os.path.join(self.dir, "leaderboard.csv"), "w") as fh:
            fh.write(leaderboard.csv_text(self.sev))
        with open(os.path.join(self.dir, "cv.csv"), "w") as fh:
            fh.write(self.cv.csv_text())
        title = f"ctsweep report: {os.path.basename(self.sweep.outdir)}"
        doc = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
               f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{esc(title)}</title>"
               f"<link rel=\"icon\" href=\"data:,\"><style>{CSS}{GALLERY_CSS}</style></head><body>\n" + "\n".join(body) +
               f"\n<script>{JS}</script>\n</body></html>\n")
        path = os.path.join(self.dir, "index.html")
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(doc)
        os.replace(tmp, path)
        return path

    # ---- sections ----

    def _header(self):
        s = self.sweep
        c = s.status_counts()
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        state = s.state
        if state == "done":
            banner = f'<div class="banner done">Sweep finished: {c["done"]} trials done, {c["failed"]} failed.</div>'
        elif state == "interrupted":
            banner = (f'<div class="banner interrupted">Sweep interrupted by a signal (resume it with '
                      f'<code>ctsweep run ... --resume</code>); reported as far as it got: {c["done"]} done, '
                      f'{c["running"]} running, {c["pending"]} pending, {c["failed"]} failed.</div>')
        else:
            banner = (f'<div class="banner running">Sweep {esc(state)} as of {esc(s.updated_utc)} (the manifest\'s '
                      f'last update; a killed sweep also reads "running"): reported as far as it got: '
                      f'{c["done"]} done, '
                      f'{c["running"]} running, {c["pending"]} pending, {c["failed"]} failed.</div>')
        sc = s.split_counts()
        rows = "".join(f"<tr><td class=l>{k}</td><td>{n}</td><td>{pos}</td><td>{n - pos}</td></tr>"
                       for k, (n, pos) in sc.items())
        nav = ("<nav><a href=#summary>summary</a><a href=#leaderboard>leaderboard</a><a href=#cross-validation>"
               "cross-validation</a><a href=#comparison>model comparison</a><a href=#roc>ROC</a><a href=#confusion>"
               "confusion</a><a href=#calibration>calibration</a><a href=#galleries>errors</a><a href=#curves>"
               "curves</a><a href=#hyper>hyperparameters</a><a href=#problems>failed/unfinished</a><a href=#checks>"
               "checks</a><a href=#methods>methods</a></nav>")
        random = s.random_backbones()
        backbone = ""
        if random:
            backbone = (f'<div class="banner header-note" id="random-backbone">Random backbone: '
                        f'{esc(", ".join(random))} {"has" if len(random) == 1 else "have"} no pretrained weights '
                        f"in this configuration, so {'its' if len(random) == 1 else 'their'} frozen backbone is "
                        "seeded random, not ImageNet-trained: these results say nothing about transfer learning "
                        "from ImageNet.</div>")
        rule = f'<p id="selection-rule"><b>Selection</b>: {esc(self.sev.rule_text())}.</p>'
        if not s.test_at_every_epoch:
            moved = sum(e.fell_back for e in self.sev.evals)
            rule += ('<p class=cap id="schema1-note">Schema-1 results: test probabilities are recorded at the final '
                     "epoch only, so every test figure below is at the trial's final epoch, not at its selected "
                     f"epoch ({moved} trial(s) selected an earlier epoch on val).</p>")
        folds = ""
        if s.folds is not None and s.kfold:
            cells = []
            for k in range(s.kfold):
                m = s.folds == k
                cells.append(f"<tr><td class=l>fold {k}</td><td>{int(m.sum())}</td><td>{int(s.labels[m].sum())}"
                             f"</td><td>{int(m.sum() - s.labels[m].sum())}</td></tr>")
            n_groups = len(set(s.groups)) if s.groups is not None else len(s.paths)
            folds = (f"<p class=cap id=folds>{s.kfold}-fold cross-validation: train and val pooled and split into "
                     f"{s.kfold} folds by patient group ({n_groups} groups in the data set); each fold is the val "
                     "set of one run per configuration and seed, the others its training set; the test set is "
                     "fixed.</p><table><thead><tr><th class=l>fold</th><th>images</th><th>positive</th>"
                     f"<th>negative</th></tr></thead><tbody>{''.join(cells)}</tbody></table>")
        skipped = (f"<p>{len(s.skipped)} image(s) skipped as unreadable: {esc('; '.join(s.skipped[:10]))}</p>"
                   if s.skipped else "")
        return (f"<h1>ctsweep report</h1>{nav}{banner}{backbone}{rule}"
                f"<p>Results <code>{esc(s.outdir)}</code>; configuration <code>{esc(s.config_path)}</code>; "
                f"ctsweep {esc(s.software_version)}; sweep created {esc(s.created_utc)}, updated {esc(s.updated_utc)}; "
                f"report generated {now}. Data set fingerprint <code>{esc(s.dataset_fingerprint[:16])}…</code>, "
                f"root <code>{esc(s.root)}</code>.</p>"
                f"<table><thead><tr><th class=l>split</th><th>images</th><th>positive</th><th>negative</th></tr>"
                f"</thead><tbody>{rows}</tbody></table>{folds}{skipped}")

    def _summary(self):
        sev = self.sev
        out = ['<h2 id="summary">Summary</h2>']
        if sev.best is None:
            out.append("<p>No trial is done yet: there are no test results. Training curves of the trials that "
                       "have epochs are below.</p>")
            return "".join(out)
        n_test = len(sev.best.y_test)
        items = []
        for m, e in sev.best_by_model.items():
            star = " (best overall)" if e is sev.best else ""
            at = (f"epoch {e.eval_epoch} (selected {e.selected_epoch}; test only at the final epoch)" if e.fell_back
                  else f"epoch {e.eval_epoch}")
            items.append(f"<li>{_swatch(self.colours[m])}<b>{esc(m)}</b>{star}: trial "
                         f"<a href=#t-{e.t.trial_id}>{e.t.trial_id}</a> ({esc(e.t.schedule_label())}, batch "
                         f"{e.t.batch_size}, {e.t.epochs} epochs) at {at}: val AUC {_f(e.val_auc)}, val accuracy "
                         f"{_pct(e.val_acc)}; test AUC {_ci(e.auc, e.auc_ci)} ({self.ci_name}), test accuracy "
                         f"{_ci(e.acc, e.acc_ci, True)} (Clopper–Pearson).</li>")
        out.append(f"<p>Each model's selected trial ({esc(sev.rule_text())}; the test set takes no part in the "
                   "choice):</p><ul>" + "".join(items) + "</ul>")
        if self.cv.repeated and self.cv.chosen:
            out.append("<p>With several folds or seeds per configuration, the figures to report are those of the "
                       "<a href=#cross-validation>cross-validated summary</a>, not of a single run.</p>")
        if n_test < 100:
            out.append(f"<p class=cap>The test set has {n_test} images: intervals are wide and differences of a few "
                       f"images are not evidence. See the model comparison for the paired tests.</p>")
        return "".join(out)

    def _leaderboard(self):
        rows = leaderboard.rows(self.sev)
        vary, const = leaderboard.varying(self.sev, rows)
        hyper = [("unfreeze", "unfrozen stages", "num"), ("fold", "fold", "num"), ("seed", "seed", "num"), ("batch_size", "batch", "num"),
                 ("clr_mode", "schedule", "str"), ("base_lr", "base lr", "num"), ("max_lr", "max lr", "num"),
                 ("step_iters", "half cycle (it)", "num"), ("gamma", "γ", "num"), ("epochs", "epochs", "num")]
        cols = ([("rank", "#", "num"), ("trial_id", "trial", "str"), ("model", "model", "str"),
                 ("selected_epoch", "selected epoch", "num"), ("val_auc", "val AUC", "num"),
                 ("val_acc", "val acc", "num"), ("test_acc", "test acc [95% CI]", "num"),
                 ("test_sens", "sensitivity [95% CI]", "num"), ("test_spec", "specificity [95% CI]", "num"),
                 ("test_auc", "test AUC [95% CI]", "num"), ("brier", "Brier", "num"), ("ece", "ECE", "num"),
                 ("cal_slope", "cal. slope", "num"), ("hl_p", "HL p", "num")]
                + [c for c in hyper if c[0] in vary]
                + [("status", "status", "str"), ("epochs_done", "epochs done", "num"),
                   ("wall_seconds", "wall (s)", "num")])
        head = "".join(f'<th data-key="{k}" data-type="{t}"{" class=l" if t == "str" else ""}>{esc(h)}</th>'
                       for k, h, t in cols)
        body = []
        for r in rows:
            cells = []
            for k, _, t in cols:
                v = r[k]
                dv = "" if v is None else (repr(float(v)) if t == "num" else str(v))
                if k == "trial_id":
                    txt = f"<a href=#t-{esc(v)}>{esc(v)}</a>"
                elif k == "model":
                    txt = _swatch(self.colours[v]) + esc(v)
                elif k in ("val_acc",):
                    txt = _pct(v)
                elif k in ("test_acc", "test_sens", "test_spec"):
                    txt = "–" if v is None else f"{100 * v:.1f}% [{100 * r[k + '_lo']:.1f}, {100 * r[k + '_hi']:.1f}]"
                elif k == "test_auc":
                    txt = "–" if v is None else f"{v:.3f} [{r['test_auc_lo']:.3f}, {r['test_auc_hi']:.3f}]"
                elif k == "selected_epoch":
                    txt = "–" if v is None else str(v)
                    if r["test_epoch"] is not None and r["test_epoch"] != v:
                        txt += f' <span class=note title="test probabilities exist at the final epoch only">' \
                               f'(test at {r["test_epoch"]})</span>'
                elif k == "status":
                    txt = esc(v if v != "running" else f"running ({r['epochs_done']}/{r['epochs']})")
                    if r["error"]:
                        txt = f'<span title="{esc(r["error"])}">{txt}</span>'
                    if r["same_run_as"]:
                        other, ep = r["same_run_as"].split(" at epoch ")
                        txt += (f' <span class=note>(same run as <a href=#t-{esc(other)}>{esc(other[:8])}</a>, '
                                f"recorded at epoch {esc(ep)})</span>")
                elif k in ("brier", "ece", "val_auc"):
                    txt = _f(v)
                elif k == "cal_slope":
                    txt = _f(v, "{:.2f}")
                elif k == "hl_p":
                    txt = _p(v)
                    if r["hl_unreliable"]:
                        txt = f'<span class=note title="an expected count is below 5">{txt} (unreliable)</span>'
                elif k == "wall_seconds":
                    txt = _f(v, "{:.1f}")
                elif v is None:
                    txt = "–"
                elif isinstance(v, float):
                    txt = f"{v:g}"
                else:
                    txt = esc(v)
                cl = ' class=l' if t == "str" else ""
                cells.append(f'<td{cl} data-v="{esc(dv)}">{txt}</td>')
            cls = "best" if r["best_overall"] else ("sel" if r["selected"] else ("failed" if r["status"] == "failed"
                                                                                   else ""))
            body.append(f'<tr class="{cls}">' + "".join(cells) + "</tr>")
        names = dict((k, h) for k, h, _ in hyper)
        same = "; ".join(f"{names[k]} {esc(v if isinstance(v, str) else f'{v:g}')}" for k, v in const.items()
                         if v is not None)
        return ('<h2 id="leaderboard">Leaderboard</h2><p class=cap>One row per trial in the order of the selection '
                f'rule (# is that rank; {esc(self.sev.rule_text())}); click a column header to sort, again to '
                'reverse. Yellow: best overall; blue: best of its model. Results at the selected epoch: test '
                'accuracy, sensitivity and specificity at P &gt; 0.5 with Clopper–Pearson 95% intervals, test AUC '
                f'with {self.ci_name} 95% intervals. Hyperparameters the same for every trial are left out'
                f'{": " + same if same else ""}. A trial with a shorter epoch budget that is the first epochs of '
                'a longer run is marked "same run as". <a href="leaderboard.csv">CSV</a>.</p>'
                f'<div class="tablewrap" id="leaderboard-wrap"><table class="sortable" id="leaderboard-table">'
                f'<thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>')

    def _cmp_rows(self, comps, holm):
        out = []
        for c in comps:
            a, b = c["a"], c["b"]
            d, mc = c["delong"], c["mcnemar"]
            cells = [f'{_swatch(self.colours[a.t.model])}{esc(a.t.model)} <a href=#t-{a.t.trial_id}>'
                     f'{a.t.trial_id[:8]}</a>',
                     f'{_swatch(self.colours[b.t.model])}{esc(b.t.model)} <a href=#t-{b.t.trial_id}>'
                     f'{b.t.trial_id[:8]}</a>',
                     _f(a.auc), _f(b.auc)]
            if d:
                cells += [f"{d['diff']:+.3f}", _f(d["se"], "{:.4f}"), _f(d["z"], "{:.2f}"), _p(d["p"])]
                if holm:
                    cells.append(_p(d.get("p_holm")))
            else:
                cells += ["–"] * (5 if holm else 4)
            cells += [_pct(a.acc), _pct(b.acc)]
            if mc:
                cells += [str(mc["b"]), str(mc["c"]), _p(mc["p"])]
                if holm:
                    cells.append(_p(mc.get("p_holm")))
            else:
                cells += ["–"] * (4 if holm else 3)
            note = c["note"]
            out.append("<tr>" + "".join(f"<td{' class=l' if i < 2 else ''}>{x}</td>" for i, x in enumerate(cells)) +
                       f"<td class=l>{esc(note)}</td></tr>")
        return "".join(out)

    def _comparison(self):
        sev = self.sev
        out = ['<h2 id="comparison">Model comparison</h2>']
        if sev.best is None:
            return out[0] + "<p>No trial is done yet.</p>"
        n = len(sev.best.y_test)
        head = ("<tr><th class=l>trial A</th><th class=l>trial B</th><th>AUC A</th><th>AUC B</th><th>ΔAUC</th>"
                "<th>SE (DeLong)</th><th>z</th><th>p (DeLong)</th>{h1}<th>acc A</th><th>acc B</th>"
                "<th>only A right</th><th>only B right</th><th>p (McNemar)</th>{h2}<th class=l>note</th></tr>")
        out.append(f"<p class=cap>Each model's selected trial against the best overall on the same {n} test "
                   "images. DeLong's test compares the two correlated AUCs (DeLong et al. 1988, computed as Sun &amp; "
                   "Xu 2014); McNemar's exact test compares accuracy at P &gt; 0.5 through the images exactly one of "
                   "the two gets right (two-sided binomial test on the discordant pairs). Both p-values are "
                   "two-sided.</p>")
        out.append("<table><thead>" + head.format(h1="", h2="") + "</thead><tbody>" +
                   self._cmp_rows(sev.vs_best, False) + "</tbody></table>")
        if sev.pairwise:
            out.append("<p class=cap>Every pair of models (selected trials), with Holm-adjusted p-values for the "
                       f"{len(sev.pairwise)} comparisons of each test.</p>")
            out.append("<table><thead>" + head.format(h1="<th>p Holm</th>", h2="<th>p Holm</th>") +
                       "</thead><tbody>" + self._cmp_rows(sev.pairwise, True) + "</tbody></table>")
        return "".join(out)

    def _selected(self):
        return list(self.sev.best_by_model.values())

    def _roc(self):
        sel = self._selected()
        out = ['<h2 id="roc">ROC curves</h2>']
        if not sel or all(e.roc is None for e in sel):
            return out[0] + "<p>No done trial has both classes in its test set.</p>"
        path, rel = self._fig("roc.png")
        figures.roc(sel, self.colours, path, self.ci_name)
        out.append(_img(rel, "ROC curves", "ROC curve of each model's selected trial on the test set (every "
                        "distinct score is a point, as sklearn.metrics.roc_curve with drop_intermediate=False). "
                        "Open circles: the operating point at P &gt; 0.5; crosses: at the Youden threshold chosen on "
                        "val and applied to test (a cross inside a circle: the two coincide). Markers are drawn above "
                        "every curve, each model's a size smaller than the one before, so none hides another."))
        evals = self.sev.evals
        done = [e for e in evals if e.done]
        # One figure for a small sweep; past FOREST_MAX trials one per model.
        groups = ([("forest.png", "test AUC and accuracy", done)] if len(done) <= figures.FOREST_MAX else
                  [(f"forest_{m}.png", f"{m}: test AUC and accuracy", [e for e in done if e.t.model == m])
                   for m in self.sev.models])
        for name, title, es in groups:
            path, rel = self._fig(name)
            res = figures.forest(es, self.colours, sel, path, title=title, ci_name=self.ci_name)
            if res:
                _, shown, total = res
                more = (f" Showing the {shown} best-ranked of {total} trials; every trial is in the leaderboard."
                        if shown < total else "")
                out.append(_img(rel, f"{title} per trial",
                                f"{esc(title)} of each done trial at its selected epoch, in the order of the selection "
                                f"rule (val only), AUC with {self.ci_name} and accuracy with Clopper–Pearson 95% "
                                f"intervals.{more}"))
        return "".join(out)

    def _confusion(self):
        out = ['<h2 id="confusion">Confusion matrices</h2><p class=cap>Rows: true class; columns: predicted class. '
               'Rates are within the true class (specificity, false-positive rate / false-negative rate, '
               'sensitivity). Left: P &gt; 0.5 (as ctsweep computes test accuracy). Right: P ≥ t with t the Youden '
               'threshold (maximum sensitivity + specificity − 1) chosen on the val set at the same epoch, then '
               'applied unchanged to test.</p>']
        sel = self._selected()
        if not sel:
            return out[0] + "<p>No trial is done yet.</p>"
        rows = []
        for e in sel:
            path, rel = self._fig(f"confusion_{e.t.model}.png")
            figures.confusion(e, self.colours[e.t.model], path)
            out.append(_img(rel, f"confusion matrices of {e.t.model}"))
            for name, cm in (("P > 0.5", e.cm05), ("Youden (val) P ≥ " + (_f(e.youden["threshold"], "{:.4g}")
                                                                        if e.youden else "–"), e.cm_youden)):
                if cm is None:
                    continue
                tn, fp, fn, tp = (int(x) for x in cm.ravel())
                rows.append(f"<tr><td class=l>{_swatch(self.colours[e.t.model])}{esc(e.t.model)} "
                            f"{e.t.trial_id[:8]}</td><td class=l>{esc(name)}</td><td>{tn}</td><td>{fp}</td>"
                            f"<td>{fn}</td><td>{tp}</td></tr>")
        out.append("<table><thead><tr><th class=l>trial</th><th class=l>threshold</th><th>TN</th><th>FP</th>"
                   "<th>FN</th><th>TP</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")
        out.append(report_eval.rates_table(self, sel))
        return "".join(out)

    def _curves(self):
        sev = self.sev
        out = ['<h2 id="curves">Training curves and learning rates</h2>']
        with_epochs = [e for e in sev.evals if len(e.t.epochs_rec)]
        if not with_epochs:
            return out[0] + "<p>No trial has finished an epoch yet.</p>"
        path, rel = self._fig("overlay_curves.png")
        figures.overlay_curves(with_epochs, self.colours, self._selected(), path)
        out.append(_img(rel, "loss and accuracy of all trials", "Loss and accuracy per epoch of every trial, "
                        "coloured by model; train values are running means over the epoch's iterations, val values "
                        "are measured after the epoch."))
        path, rel = self._fig("lr_overlay.png")
        if figures.lr_overlay(with_epochs, self.colours, path):
            out.append(_img(rel, "learning-rate traces",
                            "Learning rate of every iteration as the trial files record it (<code>/lr_trace</code>: "
                            "the trainer steps the cyclical schedule once per iteration, as PyTorch's CyclicLR), not "
                            "reconstructed. Each recorded trace is also checked against CyclicLR's formula rebuilt "
                            "from the trial's recorded settings (base_lr, max_lr, half cycle, gamma; see Checks)."))
        out.append("<h3>Per trial</h3>")
        for e in sev.evals:
            t = e.t
            summary = (f"{_swatch(self.colours[t.model])}{t.trial_id} — {esc(figures._trial_title(t))} — "
                       f"{esc(t.status)}, {t.epochs_done}/{t.epochs} epochs")
            if e.prefix_of:
                summary += (f" — same run as <a href=#t-{e.prefix_of[0]}>{e.prefix_of[0][:8]}</a>, recorded at "
                            f"epoch {e.prefix_of[1]}")
            if t.error:
                summary += f" — {esc(t.error)}"
            if len(t.epochs_rec):
                path, rel = self._fig(f"trial_{t.trial_id}.png")
                figures.trial_curves(t, self.colours[t.model], path, selected_epoch=e.selected_epoch,
                                     rule=self.sev.rule)
                inner = _img(rel, f"curves of trial {t.trial_id}")
            else:
                inner = "<p>No epoch recorded yet.</p>"
            out.append(f'<details id="t-{t.trial_id}"><summary>{summary}</summary>{inner}</details>')
        return "".join(out)

    def _problems(self):
        s = self.sweep
        out = ['<h2 id="problems">Failed and unfinished trials</h2>']
        failed = [t for t in s.trials if t.status == "failed"]
        if failed:
            rows = "".join(f"<tr class=failed><td class=l><a href=#t-{t.trial_id}>{t.trial_id}</a></td>"
                           f"<td class=l>{esc(t.model)}</td><td>{t.batch_size}</td><td class=l>"
                           f"{esc(t.schedule_label())}</td><td>{t.epochs}</td><td>{t.epochs_done}</td>"
                           f"<td class=l style='white-space:normal'>{esc(t.error or '(no message)')}</td></tr>"
                           for t in failed)
            out.append(f"<p>{len(failed)} failed trial(s), with the error each recorded:</p><table><thead><tr>"
                       "<th class=l>trial</th><th class=l>model</th><th>batch</th><th class=l>schedule</th>"
                       f"<th>epochs</th><th>epochs done</th><th class=l>error</th></tr></thead><tbody>{rows}"
                       "</tbody></table>")
        else:
            out.append("<p>No failed trials.</p>")
        unfinished = [t for t in s.trials if t.status in ("running", "pending")]
        if unfinished:
            rows = "".join(f"<tr><td class=l><a href=#t-{t.trial_id}>{t.trial_id}</a></td><td class=l>"
                           f"{esc(t.model)}</td><td class=l>{esc(t.status)}</td><td>{t.epochs_done} / {t.epochs}</td>"
                           f"<td>{'yes' if t.has_checkpoint else 'no'}</td></tr>" for t in unfinished)
            out.append(f"<p>{len(unfinished)} trial(s) not finished: their curves are drawn as far as they got; "
                       "they have no test results.</p><table><thead><tr><th class=l>trial</th><th class=l>model</th>"
                       "<th class=l>status</th><th>epochs</th><th>checkpoint</th></tr></thead><tbody>"
                       f"{rows}</tbody></table>")
        unreadable = [t for t in s.trials if t.file_error]
        if unreadable:
            out.append("<p>Trial files that could not be read (the manifest row is used instead):</p><ul>" +
                       "".join(f"<li>{esc(t.file_error)}</li>" for t in unreadable) + "</ul>")
        return "".join(out)

    def _checks(self):
        sev = self.sev
        total = sum(len(e.checks) for e in sev.evals)
        bad = sev.failed_checks()
        out = ['<h2 id="checks">Checks of the recorded numbers</h2>',
               f"<p class=cap>The analysis recomputes from the stored probabilities what ctsweep recorded: test "
               f"accuracy and AUC of every done trial, val accuracy and AUC of every epoch, and the learning-rate "
               f"trace against CyclicLR rebuilt from the recorded settings. {total} checks, {len(bad)} "
               f"disagreement(s).</p>"]
        if bad:
            out.append('<div class="banner bad">Recorded numbers that disagree with the probabilities:</div><ul>' +
                       "".join(f"<li>{tid}: {esc(name)} — {esc(d)}</li>" for tid, name, d in bad) + "</ul>")
        if self.warnings:
            out.append("<ul>" + "".join(f"<li>{esc(w)}</li>" for w in self.warnings) + "</ul>")
        return "".join(out)

    def _methods(self):
        sev = self.sev
        auc_ci = ("DeLong: AUC ± 1.96 × DeLong's standard error, clipped to [0, 1] as R's pROC does"
                  if sev.auc_ci == "delong" else
                  f"percentile intervals of {sev.n_boot} stratified bootstrap resamples (positives and negatives "
                  "resampled separately), seeded by trial id")
        return ('<h2 id="methods">Methods</h2><ul class=cap>'
                "<li>Data: every number comes from the results files (sweep.h5 and trials/*.h5, schema "
                f"{self.sweep.schema_version}); labels and splits from <code>/dataset</code>.</li>"
                f"<li>Selection: {esc(sev.rule_text())}. The same rule orders the leaderboard, numbers its #, picks "
                "each model's best trial and each run of the cross-validated summary. Trials are ranked by the "
                "rule's key at their evaluated epoch, then by grid order.</li>"
                "<li>AUC: trapezoidal area under the ROC curve, identical to sklearn.metrics.roc_auc_score; ties "
                f"count one half. Its 95% interval: {auc_ci}.</li>"
                "<li>Accuracy, sensitivity, specificity, PPV, NPV: Clopper–Pearson exact 95% intervals (beta "
                "quantiles; equal to statsmodels' proportion_confint(method='beta')).</li>"
                "<li>Cross-validation: configurations are grid points without fold and seed; their runs' val and "
                "test AUCs are averaged with 95% t intervals; the ensemble averages the runs' probabilities.</li>"
                "<li>DeLong test: two-sided z-test of the AUC difference with DeLong's covariance of correlated "
                "AUCs. McNemar: exact two-sided binomial test on the discordant images. Holm's step-down "
                "adjustment across pairs of models.</li>"
                "<li>Youden threshold: over every distinct val score, the highest threshold maximising sensitivity "
                "+ specificity − 1; a test image is positive when P ≥ threshold.</li>"
                "<li>Calibration: intercept (slope fixed at 1) and slope of the logistic recalibration of logit(P) "
                "by maximum likelihood, as R's glm; ECE over equal-count bins with a bootstrap interval; "
                "temperature scaling fitted on val by maximum likelihood; decision curves (net benefit).</li>"
                f"<li>Hosmer–Lemeshow: as R's ResourceSelection::hoslem.test on P(positive) and the 0/1 truth, with "
                f"df = g − 2 = {sev.g - 2} as R prints it. That df is the in-sample one (g − 2 because the model's "
                f"two parameters were fitted to the same data); the test images here are held out, nothing was "
                f"fitted to them, so the p-value with df = g = {sev.g} is also given and is the appropriate one. "
                "Either way the chi-square approximation needs every expected count ≥ 5; otherwise the test is "
                "flagged as unreliable.</li>"
                "<li>Learning rates: the per-iteration trace recorded in each trial file.</li></ul>")

    def _config(self):
        return ('<h2 id="config">Configuration</h2><details><summary>the sweep configuration, verbatim from '
                f'sweep.h5</summary><pre>{esc(self.sweep.config_yaml)}</pre></details>')


def write_report(sweep, outdir, rule="val_auc", n_boot=2000, g=10, seed=0, auc_ci="delong", prevalence=None,
                 saliency=True, ctsweep=None):
    r = Report(sweep, outdir, rule=rule, n_boot=n_boot, g=g, seed=seed, auc_ci=auc_ci, prevalence=prevalence,
               saliency=saliency, ctsweep=ctsweep)
    path = r.write()
    return path, r
