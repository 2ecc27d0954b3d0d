"""The report's evaluation sections, kept apart from report.py's layout and
trial sections: cross-validation (configurations over folds and seeds),
the per-hyperparameter effect view, exact intervals at both thresholds
with predictive values at a stated prevalence, and calibration (intercept
and slope, ECE, temperature scaling, reliability, decision curves,
Hosmer-Lemeshow with its small-count warning).

Each function takes the Report and returns an HTML fragment.
"""
import math

from analysis import figures, stats
from analysis.htmlfmt import esc, f, img, p_value, pct, swatch


def _ci3(x, lo, hi, percent=False):
    if x is None or not math.isfinite(x):
        return "–"
    if percent:
        return f"{100 * x:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]"
    if lo is None or not math.isfinite(lo):
        return f"{x:.3f}"
    return f"{x:.3f} [{lo:.3f}, {hi:.3f}]"


def _prop(q):
    return "–" if q is None else f"{100 * q['p']:.1f}% [{100 * q['lo']:.1f}, {100 * q['hi']:.1f}] ({q['k']}/{q['n']})"


# ---- cross-validation ----

def cross_validation(r):
    cv = r.cv
    sweep = r.sweep
    out = ['<h2 id="cross-validation">Cross-validation</h2>']
    k = sweep.kfold
    seeds = sorted({t.seed for t in sweep.trials})
    how = (f"{k}-fold cross-validation (train and val pooled and re-split {k} ways, grouped by patient, the test "
           f"set fixed)" if k else "a single train/val split (no k-fold)")
    out.append(f"<p class=cap>One row per configuration: a grid point without <code>fold</code> and "
               f"<code>seed</code>. This sweep uses {how} and {len(seeds)} seed(s) "
               f"({esc(', '.join(map(str, seeds)))}). Each run (fold × seed) is evaluated at its selected epoch "
               f"({esc(r.sev.rule_text())}). Means with 95% t intervals over the runs; the ensemble averages the "
               "runs' test probabilities per image (AUC with DeLong's interval, accuracy at P &gt; 0.5 with "
               "Clopper–Pearson's). The configuration is chosen by mean val AUC; the test set takes no part in "
               "the choice. <a href=\"cv.csv\">CSV</a>.</p>")
    if cv.chosen is None:
        return "".join(out) + "<p>No configuration has a done run yet.</p>"
    c = cv.chosen
    en = c.ensemble
    test = f"mean test AUC over its {c.n_runs} run(s) {_ci3(c.test_auc[0], c.test_auc[2], c.test_auc[3])}"
    if en:
        test += (f"; ensemble test AUC {_ci3(en['auc'], en['auc_lo'], en['auc_hi'])}, ensemble test accuracy "
                 f"{_ci3(en['acc'], en['acc_lo'], en['acc_hi'], True)}")
    out.append(f'<p id="cv-chosen"><b>Chosen configuration</b> (highest mean val AUC): {esc(c.label)} — val AUC '
               f"{_ci3(c.val_auc[0], c.val_auc[2], c.val_auc[3])} (SD {f(c.val_auc[1])}); {test}. "
               "These are the test figures to report for the sweep.</p>")
    if not cv.repeated:
        out.append("<p class=cap>Every configuration has a single run here: the SDs and t intervals need two or "
                   "more folds or seeds (<code>data.split.kfold</code>, several <code>grid.seed</code>).</p>")
    rows = []
    for cc in cv.ranked:
        en = cc.ensemble
        cls = ' class="best"' if cc.chosen else ""
        rows.append(f"<tr{cls}><td class=l>{swatch(r.colours[cc.values['model']])}{esc(cc.label)}</td>"
                    f"<td>{cc.n_runs}</td><td>{_ci3(cc.val_auc[0], cc.val_auc[2], cc.val_auc[3])}</td>"
                    f"<td>{f(cc.val_auc[1])}</td><td>{pct(cc.val_acc[0])}</td>"
                    f"<td>{f(100 * cc.val_acc[1] if math.isfinite(cc.val_acc[1]) else None, '{:.1f}')}</td>"
                    f"<td>{_ci3(cc.test_auc[0], cc.test_auc[2], cc.test_auc[3])}</td><td>{f(cc.test_auc[1])}</td>"
                    f"<td>{_ci3(en['auc'], en['auc_lo'], en['auc_hi']) if en else '–'}</td></tr>")
    out.append('<div class="tablewrap"><table id="cv-table"><thead><tr><th class=l>configuration</th><th>runs</th>'
               "<th>val AUC mean [95% CI]</th><th>val AUC SD</th><th>val acc mean</th><th>val acc SD (pt)</th>"
               "<th>test AUC mean [95% CI]</th><th>test AUC SD</th><th>ensemble test AUC [DeLong 95% CI]</th></tr>"
               f"</thead><tbody>{''.join(rows)}</tbody></table></div>")
    return "".join(out)


def hyper(r):
    out = ['<h2 id="hyper">Hyperparameters: effect on val AUC</h2>']
    path, rel = r.fig("effects.png")
    if figures.effects(r.cv.effects(), r.colours, path):
        out.append(img(rel, "effect of each hyperparameter on val AUC",
                       "For each grid axis that varies: each value's mean val AUC at the selected epochs, over the "
                       "configurations that have that value (the other axes averaged), with a 95% t interval over "
                       "every run (fold × seed) that has the value; the number of configurations and runs is "
                       "written beside each point. An axis that varies together with another (gamma with the "
                       "schedule) is shown once. Val only: the test set "
                       "plays no part in choosing hyperparameters."))
    else:
        out.append("<p>No grid axis varies across configurations with a done run.</p>")
    return "".join(out)


# ---- thresholds and predictive values ----

def rates_table(r, sel):
    prev = r.sev.prevalence
    rows = []
    for e in sel:
        for name, rates, thr in (("P > 0.5", e.rates, None),
                                 ("Youden (val) P ≥ " + (f(e.youden["threshold"], "{:.4g}") if e.youden else "–"),
                                  e.rates_youden, e.youden)):
            if rates is None:
                continue
            rows.append(f"<tr><td class=l>{swatch(r.colours[e.t.model])}{esc(e.t.model)} {e.t.trial_id[:8]}</td>"
                        f"<td class=l>{esc(name)}</td><td>{_prop(rates['acc'])}</td><td>{_prop(rates['sens'])}</td>"
                        f"<td>{_prop(rates['spec'])}</td><td>{_prop(rates['ppv'])}</td><td>{_prop(rates['npv'])}"
                        "</td>" + (_at_prev(rates, prev) if prev is not None else "") + "</tr>")
    prev_head = (f"<th>PPV at prevalence {prev:g}</th><th>NPV at prevalence {prev:g}</th>" if prev is not None
                 else "")
    out = ['<p class=cap>Accuracy, sensitivity, specificity, PPV and NPV with Clopper–Pearson (exact binomial) '
           '95% intervals and the counts behind them. PPV and NPV as measured depend on the test set\'s '
           'prevalence']
    if prev is not None:
        out.append(f"; at the stated prevalence π = {prev:g} they are "
                   "PPV = sens·π / (sens·π + (1 − spec)(1 − π)) and NPV = spec(1 − π) / (spec(1 − π) + "
                   "(1 − sens)π), with intervals from the formula at the ends of the sensitivity and specificity "
                   "intervals (conservative)")
    else:
        out.append(" (give <code>--prevalence P</code> for the values at another prevalence)")
    out.append(".</p><div class=tablewrap><table id=\"rates-table\"><thead><tr><th class=l>trial</th>"
               "<th class=l>threshold</th><th>accuracy</th><th>sensitivity</th><th>specificity</th><th>PPV</th>"
               f"<th>NPV</th>{prev_head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")
    return "".join(out)


def _at_prev(rates, prev):
    a = stats.predictive_at_prevalence(rates, prev)
    if a is None:
        return "<td>–</td><td>–</td>"
    return "".join(f"<td>{_ci3(a[k]['p'], a[k]['lo'], a[k]['hi'], True)}</td>" for k in ("ppv", "npv"))


# ---- calibration ----

def calibration(r, sel):
    out = ['<h2 id="calibration">Calibration</h2>']
    if not sel:
        return out[0] + "<p>No trial is done yet.</p>"
    details = {e.t.trial_id: e.calibration_detail(n_boot=r.sev.n_boot, seed=r.sev.seed) for e in sel}
    path, rel = r.fig("reliability.png")
    figures.reliability(sel, details, r.colours, path)
    out.append(img(rel, "reliability diagram",
                   "Reliability of each model's selected trial on the test set: the images sorted by P(positive) "
                   "and cut into equal-count bins (the count beside each point), mean P against the observed "
                   "fraction positive with 95% Wilson intervals; open squares: the same after temperature "
                   "scaling. Underneath, every test image's P (positives above, negatives below)."))
    rows = []
    for e in sel:
        d = details[e.t.trial_id]
        c = e.cal
        ts = d["temperature"]
        rows.append(f"<tr><td class=l>{swatch(r.colours[e.t.model])}{esc(e.t.model)} {e.t.trial_id[:8]}</td>"
                    f"<td>{e.eval_epoch}</td><td>{len(e.y_test)}</td><td>{f(e.brier)}</td>"
                    f"<td>{_ci3(c['intercept'], c['intercept_lo'], c['intercept_hi'])}</td>"
                    f"<td>{_ci3(c['slope'], c['slope_lo'], c['slope_hi'])}</td>"
                    f"<td>{_ci3(d['ece'], d['ece_lo'], d['ece_hi'])} ({d['n_bins']} bins)</td>"
                    f"<td class=l>{esc(c['note'])}</td></tr>")
    out.append("<h3>Calibration intercept, slope and ECE</h3><p class=cap>Logistic recalibration on the test set: "
               "the slope b of logit P(y = 1) = a + b·logit(P) (1 is ideal; below 1, predictions too extreme) and "
               "the intercept a′ of logit P(y = 1) = a′ + logit(P) with the slope fixed at 1 (calibration in the "
               "large; 0 is ideal, above 0 the model under-predicts), both maximum-likelihood fits as R's "
               "<code>glm(family = binomial)</code>, with Wald 95% intervals. ECE: mean |mean P − fraction "
               f"positive| over equal-count bins weighted by size, with a {r.sev.n_boot}-resample bootstrap "
               "interval. Brier score: mean squared difference between P and the 0/1 truth.</p>"
               "<table id=\"calibration-table\"><thead><tr><th class=l>trial</th><th>epoch</th><th>images</th>"
               "<th>Brier</th><th>intercept [95% CI]</th><th>slope [95% CI]</th><th>ECE [95% CI]</th>"
               f"<th class=l>note</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")
    rows = []
    for e in sel:
        ts = details[e.t.trial_id]["temperature"]
        if ts is None:
            rows.append(f"<tr><td class=l>{esc(e.t.model)} {e.t.trial_id[:8]}</td><td colspan=9 class=l>not "
                        "fitted: the val set lacks a class or probabilities</td></tr>")
            continue
        cells = []
        for k in ("before", "after"):
            b = ts[k]
            cells += [f(b["nll"], "{:.4f}"), f(b["brier"]), _ci3(b["ece"], b["ece_lo"], b["ece_hi"]),
                      f(b["cal"]["slope"], "{:.2f}")]
        rows.append(f"<tr><td class=l>{swatch(r.colours[e.t.model])}{esc(e.t.model)} {e.t.trial_id[:8]}</td>"
                    f"<td>{ts['T']:.4g}</td>" + "".join(f"<td>{x}</td>" for x in cells) + "</tr>")
    out.append("<h3>Temperature scaling</h3><p class=cap>One temperature T fitted on the val set at the same "
               "epoch (maximum likelihood), applied unchanged to test: P′ = σ(logit(P) / T). It changes "
               "neither the ranking (AUC) nor the decisions at P &gt; 0.5; only the probabilities. Test "
               "figures before and after.</p><table id=\"temperature-table\"><thead><tr><th class=l>trial</th>"
               "<th>T</th><th>NLL before</th><th>Brier before</th><th>ECE before</th><th>slope before</th>"
               "<th>NLL after</th><th>Brier after</th><th>ECE after</th><th>slope after</th></tr></thead>"
               f"<tbody>{''.join(rows)}</tbody></table>")
    path, rel = r.fig("decision_curves.png")
    figures.decision_curves(sel, r.colours, path)
    out.append('<h3 id="decision-curves">Decision curves</h3>' +
               img(rel, "decision curves", "Net benefit of acting on P ≥ t for each threshold probability t "
                   "(Vickers &amp; Elkin 2006): true positives per image minus false positives per image weighted "
                   "by the odds t/(1 − t) at which a false positive is worth a true positive; against treating "
                   "every image (treat all) and none (0). Only thresholds where a model's curve lies above both "
                   "lines favour using it."))
    out.append(_hl(r, sel))
    return "".join(out)


def _hl(r, sel):
    g = r.sev.g
    out = [f"<h3>Hosmer–Lemeshow</h3><p class=cap>As R's <code>ResourceSelection::hoslem.test(y, P, g = {g})"
           "</code>: groups cut at type-7 quantiles of P(positive) (duplicate breaks merged), chi-square over "
           f"observed and expected counts of both classes, with df = g − 2 = {g - 2} as R reports it. On held-out "
           f"data no parameter was fitted to these images, so Hosmer and Lemeshow's reference distribution is "
           f"chi-square with g = {g} df; that p-value is given too. The chi-square approximation needs every "
           "expected count to be at least 5: where one is smaller the test is greyed out and not to be "
           "relied on.</p>"]
    for e in sel:
        head = f"<h4>{swatch(r.colours[e.t.model])}{esc(e.t.model)} — trial {e.t.trial_id}</h4>"
        if e.hl is None:
            out.append(head + f"<p>Hosmer–Lemeshow not computable: {esc(e.hl_error)}</p>")
            continue
        h = e.hl
        rows = "".join(f"<tr><td class=l>{esc(h['labels'][j])}</td><td>{h['n'][j]}</td><td>{h['obs0'][j]:g}</td>"
                       f"<td>{h['exp0'][j]:.3f}</td><td>{h['obs1'][j]:g}</td><td>{h['exp1'][j]:.3f}</td></tr>"
                       for j in range(h["n_groups"]))
        merged = f" ({h['n_groups']} groups after merging duplicate breaks)" if h["n_groups"] < g else ""
        warn = (f'<p class="hl-warning"><b>Not reliable:</b> {esc(h["warning"])}.</p>' if h["unreliable"] else "")
        cls = "hl unreliable" if h["unreliable"] else "hl"
        out.append(f'<div class="{cls}">{head}{warn}<p>X² = {f(h["chisq"], "{:.4f}")}, df = {h["df"]}, '
                   f"p = {p_value(h['p'])}{merged}; with df = {g} (held-out): p = {p_value(h['p_holdout'])}.</p>"
                   "<table><thead><tr><th class=l>group (P range)</th><th>images</th><th>observed negative</th>"
                   "<th>expected negative</th><th>observed positive</th><th>expected positive</th></tr></thead>"
                   f"<tbody>{rows}</tbody></table></div>")
    return "".join(out)
