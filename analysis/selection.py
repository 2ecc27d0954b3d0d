"""The one rule that picks a trial's epoch and ranks trials, used by the
leaderboard (order and `#`), each model's "best", the cross-validated
summary, `compare` and the report, so that they cannot disagree.

A trial's selected epoch is chosen on val only:

- val_auc (default): highest val AUC; ties by lower val loss, then the
  earlier epoch;
- val_acc: highest val accuracy; ties by higher val AUC, lower val loss,
  then the earlier epoch;
- val_loss: lowest val loss; ties by the earlier epoch;
- final: the last recorded epoch.

Trials are ranked by the same key at their selected epochs (for `final`,
by val AUC then val loss at the final epoch), then by manifest order.
Schema-1 results hold test probabilities at the final epoch only, so there
the epoch at which a trial is evaluated on test falls back to the final
one whatever the rule; the rule still ranks the trials, on the val figures
of that epoch. A missing (NaN) val figure ranks last.
"""
import math

RULES = ("val_auc", "val_acc", "val_loss", "final")

DESCRIPTION = {
    "val_auc": "highest val AUC; ties by lower val loss, then the earlier epoch",
    "val_acc": "highest val accuracy; ties by higher val AUC, lower val loss, then the earlier epoch",
    "val_loss": "lowest val loss; ties by the earlier epoch",
    "final": "the final epoch",
}


def _bad(x):
    return x is None or not math.isfinite(float(x))


def epoch_key(rec, rule):
    """Sort key of one /epochs record under `rule`: smaller is better."""
    auc, acc, loss = float(rec["val_auc"]), float(rec["val_acc"]), float(rec["val_loss"])
    neg = (lambda x: math.inf if _bad(x) else -x)
    pos = (lambda x: math.inf if _bad(x) else x)
    if rule == "val_auc":
        return (neg(auc), pos(loss))
    if rule == "val_acc":
        return (neg(acc), neg(auc), pos(loss))
    if rule == "val_loss":
        return (pos(loss),)
    if rule == "final":
        return (neg(auc), pos(loss))
    raise ValueError(f"unknown selection rule '{rule}' (one of {', '.join(RULES)})")


def select_index(epochs_rec, rule="val_auc"):
    """Row of `epochs_rec` (the /epochs records) the rule selects; None when empty."""
    if rule not in RULES:
        raise ValueError(f"unknown selection rule '{rule}' (one of {', '.join(RULES)})")
    n = len(epochs_rec)
    if n == 0:
        return None
    if rule == "final":
        return n - 1
    # min over (key, row): ties go to the earlier epoch.
    return min(range(n), key=lambda i: (epoch_key(epochs_rec[i], rule), i))


def select_epoch(epochs_rec, rule="val_auc"):
    i = select_index(epochs_rec, rule)
    return None if i is None else int(epochs_rec["epoch"][i])


def test_epoch(trial, rule="val_auc"):
    """(epoch at which the trial is evaluated on test, fell back to final?).
    Schema 1: the final epoch, the only one with test probabilities."""
    sel = select_epoch(trial.epochs_rec, rule)
    if sel is None:
        return None, False
    if trial.test_at_every_epoch:
        return sel, False
    final = int(trial.epochs_rec["epoch"][-1])
    return final, sel != final


def describe(rule, schema_version=2):
    s = f"selection rule {rule}: {DESCRIPTION[rule]}, on val only"
    if schema_version < 2 and rule != "final":
        s += ("; these are schema-1 results, whose test probabilities exist at the final epoch only, so each "
              "trial is evaluated on test at its final epoch and ranked by the rule on the val figures there")
    return s


def values_at(epochs_rec, idx):
    """(val_auc, val_acc, val_loss) of row idx, NaN for a missing row."""
    if idx is None:
        return float("nan"), float("nan"), float("nan")
    r = epochs_rec[idx]
    return float(r["val_auc"]), float(r["val_acc"]), float(r["val_loss"])


def rank_key(epochs_rec, idx, rule):
    """Key that ranks trials, smaller is better, at their evaluated rows."""
    if idx is None:
        return (math.inf,) * 3
    return epoch_key(epochs_rec[idx], rule)

