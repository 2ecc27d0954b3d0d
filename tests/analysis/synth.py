"""Small synthetic results folders in the schema-2 layout (hdf5_schema/README.md
plus the fields of schema 2: `/test/prob` [epochs, n_test], `/dataset/group`,
`/dataset/fold`, `fold` and `selected_epoch` in `/trials` and each trial
file), written with h5py, for the tests of what `ctsweep run` does not
produce yet: test probabilities at every epoch and k-fold sweeps.

The probabilities are drawn from a seeded latent score per image plus noise
whose size depends on the configuration, so configurations differ; every
recorded number (val accuracy, AUC and loss per epoch, test_acc / test_auc
at the selected epoch, the learning-rate trace) is computed here from the
probabilities with numpy and sklearn, as ctsweep would record it.
"""
import hashlib
import os

import h5py
import numpy as np
from sklearn.metrics import roc_auc_score

STR = h5py.string_dtype("utf-8")
CONFIG = """data:
  root: /data/synthetic
  groups: {pattern: '^(p[0-9]+)-'}
  split: {fractions: [0.6, 0.2, 0.2], kfold: 3, seed: 0}
weights:
  vgg16: ../weights/vgg16.safetensors
grid:
  model: [vgg16, resnet34]
  epochs: [4]
  batch_size: [16]
  clr:
    - {mode: triangular, base_lr: 1.0e-4, max_lr: 1.0e-3, step_size_epochs: 1}
    - {mode: exp_range, base_lr: 1.0e-4, max_lr: 1.0e-3, step_size_epochs: 1, gamma: 0.999}
  seed: [0, 1]
"""

ITERS = 4


def lr_trace(mode, gamma, epochs):
    """CyclicLR with base 1e-4, max 1e-3, half cycle ITERS iterations."""
    i = np.arange(epochs * ITERS, dtype=np.float64)
    total = 2.0 * ITERS
    cycle = np.floor(1 + i / total)
    x = np.abs(i / ITERS - 2 * cycle + 1)
    f = np.power(gamma, i) if mode == "exp_range" else 1.0
    return 1e-4 + (1e-3 - 1e-4) * np.maximum(0, 1 - x) * f


def _loss(y, p):
    q = np.clip(p, 1e-7, 1 - 1e-7)
    return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))


def select_val_auc(auc, loss):
    """Highest val AUC, ties lower val loss, then the earlier epoch: written
    here independently of analysis.selection."""
    order = np.lexsort((np.arange(len(auc)), loss, -auc))
    return int(order[0])


def build(out, n=120, kfold=3, seeds=(0, 1), epochs=4, schema=2, unfreeze=(0,)):
    """A done k-fold sweep: 2 models x unfreeze x 2 schedules x kfold folds x seeds."""
    os.makedirs(os.path.join(out, "trials"), exist_ok=True)
    rng = np.random.default_rng(42)
    labels = (np.arange(n) % 2).astype(np.uint8)
    rng.shuffle(labels)
    latent = rng.normal(size=n) + 1.4 * labels
    groups = [f"p{i // 2}" for i in range(n)]  # two images per patient
    paths = [f"/data/synthetic/{'pos' if labels[i] else 'neg'}/{groups[i]}-{i}.png" for i in range(n)]
    patient = np.arange(n) // 2
    n_pat = n // 2
    test_pat = set(range(0, n_pat, 5))  # every 5th patient: test
    fold = np.full(n, -1, dtype=np.int64)
    split = np.zeros(n, dtype=np.uint8)
    rest = [p for p in range(n_pat) if p not in test_pat]
    for j, p in enumerate(rest):
        fold[patient == p] = j % kfold
    split[fold == -1] = 2
    test_index = np.flatnonzero(fold == -1).astype(np.int64)
    trials = []
    models = ("vgg16", "resnet34")
    schedules = (("triangular", 1.0), ("exp_range", 0.999))
    for model in models:
        for u in unfreeze:
            for mode, gamma in schedules:
                for k in range(kfold):
                    for seed in seeds:
                        trials.append(dict(model=model, unfreeze=u, clr_mode=mode, gamma=gamma, fold=k, seed=seed))
    rows = []
    for ti, tr in enumerate(trials):
        # upper-case hex ids: prefixes must match in any case
        tid = hashlib.sha256(f"synthetic {ti}".encode()).hexdigest()[:16].upper()
        tr["trial_id"] = tid
        skill = (1.2 if tr["model"] == "vgg16" else 0.7) + (0.3 if tr["clr_mode"] == "triangular" else 0.0) + \
            0.2 * tr["unfreeze"]
        t_rng = np.random.default_rng(1000 + ti)
        val_index = np.flatnonzero(fold == tr["fold"]).astype(np.int64)
        val_prob = np.zeros((epochs, len(val_index)), dtype=np.float32)
        test_prob = np.zeros((epochs, len(test_index)), dtype=np.float32)
        noise_v = t_rng.normal(size=len(val_index))
        noise_t = t_rng.normal(size=len(test_index))
        for e in range(epochs):
            s = skill * (0.5 + 0.5 * e / (epochs - 1))
            val_prob[e] = 1 / (1 + np.exp(-(s * latent[val_index] - 0.7 * s + noise_v * (1.5 - 0.2 * e))))
            test_prob[e] = 1 / (1 + np.exp(-(s * latent[test_index] - 0.7 * s + noise_t * (1.5 - 0.2 * e))))
        if ti % 5 == 0:
            # A tie in val AUC: epoch 3 is a monotone transform of epoch 2
            # (same ranking, another loss).
            val_prob[2] = val_prob[1] ** 1.5
        yv = labels[val_index].astype(float)
        yt = labels[test_index].astype(float)
        vp = val_prob.astype(np.float64)
        rec = np.zeros(epochs, dtype=[("epoch", "<u8"), ("lr", "<f8"), ("train_loss", "<f8"), ("train_acc", "<f8"),
                                      ("val_loss", "<f8"), ("val_acc", "<f8"), ("val_auc", "<f8"),
                                      ("seconds", "<f8")])
        lr = lr_trace(tr["clr_mode"], tr["gamma"], epochs)
        for e in range(epochs):
            rec[e] = (e + 1, lr[(e + 1) * ITERS - 1], 0.7 - 0.05 * e, 0.6 + 0.05 * e, _loss(yv, vp[e]),
                      float(np.mean((vp[e] > 0.5) == yv)), roc_auc_score(yv, vp[e]), 0.1)
        sel = select_val_auc(rec["val_auc"], rec["val_loss"])
        tp = test_prob.astype(np.float64)[sel]
        attrs = dict(trial_id=tid, model=tr["model"], batch_size=16, epochs=epochs, clr_mode=tr["clr_mode"],
                     base_lr=1e-4, max_lr=1e-3, step_size=0.0, step_size_epochs=1.0, gamma=tr["gamma"],
                     seed=tr["seed"], step_size_down=0.0, status="done", error="", best_epoch=sel + 1,
                     best_val_acc=float(rec["val_acc"].max()), test_acc=float(np.mean((tp > 0.5) == yt)),
                     test_auc=float(roc_auc_score(yt, tp)), wall_seconds=1.5, host="synthetic", device="cpu",
                     epochs_done=epochs, rank=1, forwards=0, cache_hits=0, fold=tr["fold"], selected_epoch=sel + 1,
                     unfreeze=tr["unfreeze"], backbone_lr_scale=0.1,
                     cache_bytes_per_image=(512 * 7 * 7 if tr["unfreeze"] == 0 else 512 * 14 * 14) * 4)
        with h5py.File(os.path.join(out, "trials", tid + ".h5"), "w") as f:
            for k, v in attrs.items():
                f.attrs[k] = v
            f.attrs["iters_per_epoch"] = ITERS
            f.attrs["schema_version"] = schema
            f.attrs["software_version"] = "synthetic"
            f["epochs"] = rec
            f["lr_trace"] = lr
            f["val/prob"] = val_prob
            f["val/index"] = val_index
            f["test/prob"] = test_prob if schema >= 2 else test_prob[-1]
            f["test/index"] = test_index
        tr.update(attrs, val_index=val_index, val_prob=vp, test_prob=test_prob.astype(np.float64), epochs_rec=rec)
        rows.append(attrs)
    fields = [("trial_id", "S16"), ("model", "S16"), ("batch_size", "<i8"), ("epochs", "<i8"), ("clr_mode", "S16"),
              ("base_lr", "<f8"), ("max_lr", "<f8"), ("step_size", "<f8"), ("step_size_epochs", "<f8"),
              ("gamma", "<f8"), ("seed", "<i8"), ("step_size_down", "<f8"), ("status", "S16"), ("error", "S64"),
              ("best_epoch", "<i8"), ("best_val_acc", "<f8"), ("test_acc", "<f8"), ("test_auc", "<f8"),
              ("wall_seconds", "<f8"), ("host", "S16"), ("device", "S16"), ("epochs_done", "<i8"), ("rank", "<i8"),
              ("forwards", "<i8"), ("cache_hits", "<i8"), ("fold", "<i8"), ("selected_epoch", "<i8"),
              ("unfreeze", "<i8")]
    table = np.zeros(len(rows), dtype=fields)
    for i, r in enumerate(rows):
        for k, _ in fields:
            table[i][k] = r[k].encode() if isinstance(r[k], str) else r[k]
    with h5py.File(os.path.join(out, "sweep.h5"), "w") as f:
        for k, v in dict(schema_version=schema, config_yaml=CONFIG, config_path="/data/synthetic.yaml",
                         created_utc="2026-12-07T00:00:00Z", updated_utc="2026-12-07T00:01:00Z",
                         software_version="synthetic", dataset_fingerprint="0" * 64, state="done").items():
            f.attrs[k] = v
        d = f.create_group("dataset")
        d.attrs["root"] = "/data/synthetic"
        d.create_dataset("path", data=paths, dtype=STR)
        d["label"] = labels
        d["split"] = split
        d.create_dataset("skipped", shape=(0,), dtype=STR)
        d.create_dataset("group", data=groups, dtype=STR)
        d["fold"] = fold
        f["trials"] = table
        for r in rows:
            f[f"trial/{r['trial_id']}"] = h5py.ExternalLink(f"trials/{r['trial_id']}.h5", "/")
    return {"labels": labels.astype(int), "trials": trials, "test_index": test_index, "fold": fold,
            "groups": groups}
