"""Reader of a ctsweep results directory (hdf5_schema/README.md, schemas 1 and 2).

Everything the analysis knows about a sweep comes through here: the
manifest OUT/sweep.h5 (data set, one row per trial, sweep state) and each
trial file OUT/trials/<trial_id>.h5 (per-epoch records, the learning rate of
every iteration, val and test probabilities). The reader tolerates a sweep
that is still running or was killed: trial files are rewritten whole and
renamed, so each one is read at a consistent state; a trial whose file is
missing or unreadable keeps its manifest row and records why.

Schema 2 records test probabilities after every epoch (`/test/prob` is
[epochs, n_test], like `/val/prob`), the grouping and k-fold assignment of
each image (`/dataset/group`, `/dataset/fold`) and each trial's `fold` and
`selected_epoch`. Schema 1 has `/test/prob` [n_test] at the final epoch
only; it is read into the same shape with one row, and `test_epochs` says
which epoch each row holds.
"""
import os
import re

# The writer renames whole files into place and never holds a lock on
# them; a reader must not need to lock either (read-only copies, NFS).
os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")

import h5py  # noqa: E402
import numpy as np  # noqa: E402

SCHEMA_VERSIONS = (1, 2)
SPLIT_NAMES = ("train", "val", "test")
STATUSES = ("pending", "running", "done", "failed")


class ResultsError(Exception):
    """A results directory that cannot be read; the message names the file."""


def _s(v):
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, np.ndarray) and v.shape == ():
        return _s(v[()])
    return str(v)


def _num(v, kind=float):
    v = v.item() if hasattr(v, "item") else v
    return kind(v)


def _unknown(x):
    """Schema convention: unknown metrics are -1."""
    return None if x is None or (isinstance(x, float) and (np.isnan(x) or x < 0)) or (isinstance(x, int) and x < 0) \
        else x


def weighted_models(config_yaml):
    """Models given a weights file in the configuration's top-level
    `weights:` section (block or flow mapping); the others get a seeded
    random backbone. Comments are ignored."""
    lines = [re.sub(r"(^|\s)#.*$", "", ln).rstrip() for ln in config_yaml.splitlines()]
    out = set()
    for i, ln in enumerate(lines):
        m = re.match(r"^weights:\s*(.*)$", ln)
        if not m:
            continue
        rest = m.group(1).strip()
        if rest.startswith("{"):
            for k, v in re.findall(r"([A-Za-z0-9_]+)\s*:\s*([^,}]*)", rest):
                if v.strip() and v.strip() not in ("null", "~", '""', "''"):
                    out.add(k)
            continue
        for sub in lines[i + 1:]:
            if not sub.strip():
                continue
            if not sub[:1].isspace():
                break
            mm = re.match(r"^\s+([A-Za-z0-9_]+)\s*:\s*(\S.*)?$", sub)
            if mm and mm.group(2) and mm.group(2).strip() not in ("null", "~", '""', "''"):
                out.add(mm.group(1))
    return out


class Trial:
    """One trial: hyperparameters, status, records and probabilities.

    Arrays are empty until the trial has them: `epochs` (structured,
    fields of /epochs), `lr_trace` (float64), `val_prob` (float64,
    [epochs_done, n_val]), `test_probs` (float64, [k, n_test]: every epoch
    in schema 2, the final epoch alone in schema 1) with `test_epochs` [k]
    (1-based epoch of each row), and `test_prob` (the last row).
    """
    HYPER = ("model", "batch_size", "epochs", "clr_mode", "base_lr", "max_lr", "step_size", "step_size_epochs",
             "gamma", "seed")
    # A configuration is a grid point without the repetition axes.
    REPEAT = ("fold", "seed")

    def __init__(self, row):
        self.trial_id = row["trial_id"]
        for k in self.HYPER:
            setattr(self, k, row[k])
        # Iterations of a cycle's falling half (0: as the rising half); absent
        # from folders written before it was recorded.
        self.step_size_down = float(row.get("step_size_down", 0.0))
        # k-fold index (-1: no k-fold) and the epoch ctsweep selected; schema 2.
        self.fold = int(row.get("fold", -1))
        # Trailing backbone stages trained with the head (0: the head alone);
        # absent from folders written before fine-tuning existed.
        self.unfreeze = int(row.get("unfreeze", 0))
        self.backbone_lr_scale = None
        self.cache_bytes_per_image = None
        self.recorded_selected_epoch = _unknown(int(row.get("selected_epoch", -1))) or None
        self.status = row["status"]
        self.error = row["error"]
        self.best_epoch = _unknown(row["best_epoch"]) or None
        self.best_val_acc = _unknown(row["best_val_acc"])
        self.test_acc = _unknown(row["test_acc"])
        self.test_auc = _unknown(row["test_auc"])
        self.wall_seconds = row["wall_seconds"]
        self.host = row["host"]
        self.device = row["device"]
        self.iters_per_epoch = 0
        self.epochs_rec = np.zeros(0, dtype=[("epoch", "u8"), ("lr", "f8"), ("train_loss", "f8"),
                                             ("train_acc", "f8"), ("val_loss", "f8"), ("val_acc", "f8"),
                                             ("val_auc", "f8"), ("seconds", "f8")])
        self.lr_trace = np.zeros(0)
        self.val_prob = np.zeros((0, 0))
        self.val_index = np.zeros(0, dtype=np.int64)
        self.test_probs = np.zeros((0, 0))
        self.test_epochs = np.zeros(0, dtype=np.int64)
        self.test_index = np.zeros(0, dtype=np.int64)
        self.schema_version = 1
        self.has_checkpoint = False
        self.file_error = None
        self._manifest_epochs_done = row["epochs_done"]

    @property
    def epochs_done(self):
        return len(self.epochs_rec) if self.file_error is None else self._manifest_epochs_done

    @property
    def test_prob(self):
        """Test probabilities at the last recorded epoch (empty when none)."""
        return self.test_probs[-1] if len(self.test_probs) else np.zeros(0)

    @property
    def done(self):
        return (self.status == "done" and len(self.test_probs) > 0 and len(self.test_index) > 0
                and self.test_probs.shape[1] == len(self.test_index))

    def test_prob_at(self, epoch):
        """Test probabilities after `epoch` (1-based), or None when not recorded."""
        hit = np.flatnonzero(self.test_epochs == epoch)
        return self.test_probs[hit[0]] if len(hit) else None

    def val_prob_at(self, epoch):
        hit = np.flatnonzero(self.epochs_rec["epoch"] == epoch) if len(self.epochs_rec) else []
        return self.val_prob[hit[0]] if len(hit) and hit[0] < len(self.val_prob) else None

    @property
    def step_iters(self):
        """Half-cycle length in iterations, as the trainer resolves it."""
        if self.step_size > 0:
            return float(self.step_size)
        return float(self.step_size_epochs) * self.iters_per_epoch

    @property
    def final_val_prob(self):
        """Val probabilities at the last recorded epoch: the network state whose
        test probabilities a done trial holds."""
        return self.val_prob[-1] if len(self.val_prob) else None

    def schedule_label(self):
        if self.clr_mode == "exp_range":
            return f"exp_range γ={self.gamma:g}"
        return self.clr_mode

    def read_file(self, path):
        try:
            with h5py.File(path, "r") as f:
                a = f.attrs
                tid = _s(a["trial_id"])
                if tid != self.trial_id:
                    raise ResultsError(f"{path}: trial_id attribute is {tid}, expected {self.trial_id}")
                self.status = _s(a["status"])
                self.error = _s(a["error"])
                self.iters_per_epoch = _num(a["iters_per_epoch"], int)
                self.best_epoch = _unknown(_num(a["best_epoch"], int)) or None
                self.best_val_acc = _unknown(_num(a["best_val_acc"]))
                self.test_acc = _unknown(_num(a["test_acc"]))
                self.test_auc = _unknown(_num(a["test_auc"]))
                self.wall_seconds = _num(a["wall_seconds"])
                self.host = _s(a["host"]) or self.host
                self.device = _s(a["device"]) or self.device
                ep = f["epochs"][...]
                self.epochs_rec = ep
                self.lr_trace = np.asarray(f["lr_trace"][...], dtype=np.float64)
                self.val_prob = np.asarray(f["val/prob"][...], dtype=np.float64)
                self.val_index = np.asarray(f["val/index"][...], dtype=np.int64)
                tp = np.asarray(f["test/prob"][...], dtype=np.float64)
                self.test_index = np.asarray(f["test/index"][...], dtype=np.int64)
                self.schema_version = _num(a["schema_version"], int) if "schema_version" in a else 1
                if "fold" in a:
                    self.fold = _num(a["fold"], int)
                if "unfreeze" in a:
                    self.unfreeze = _num(a["unfreeze"], int)
                if "backbone_lr_scale" in a:
                    self.backbone_lr_scale = _num(a["backbone_lr_scale"])
                if "cache_bytes_per_image" in a:
                    self.cache_bytes_per_image = _num(a["cache_bytes_per_image"], int)
                if "selected_epoch" in a:
                    self.recorded_selected_epoch = _unknown(_num(a["selected_epoch"], int)) or None
                n_ep = len(ep)
                if tp.ndim == 2:
                    # Schema 2: one row per recorded epoch.
                    self.test_probs = tp
                    self.test_epochs = np.asarray(ep["epoch"][:len(tp)], dtype=np.int64)
                elif tp.ndim == 1 and len(tp):
                    # Schema 1: the final epoch only.
                    self.test_probs = tp[None, :]
                    self.test_epochs = np.array([int(ep["epoch"][-1]) if n_ep else 0], dtype=np.int64)
                self.has_checkpoint = "checkpoint" in f
        except (OSError, KeyError, ValueError) as e:
            self.file_error = f"{path}: {e}"
        except ResultsError as e:
            self.file_error = str(e)

    def hyper_dict(self):
        return {k: getattr(self, k) for k in self.HYPER}

    def config_key(self):
        """The grid point without fold and seed: the runs of one configuration."""
        return tuple((k, getattr(self, k)) for k in self.HYPER if k not in self.REPEAT) + \
            (("step_size_down", self.step_size_down), ("unfreeze", self.unfreeze))

    @property
    def test_at_every_epoch(self):
        return self.schema_version >= 2


class Sweep:
    """A results directory: manifest attributes, data set, trials in manifest order."""

    def __init__(self, outdir):
        # OUTDIR/sweep.h5 names the same folder.
        if os.path.basename(os.path.normpath(outdir)) == "sweep.h5" and os.path.isfile(outdir):
            outdir = os.path.dirname(os.path.abspath(outdir))
        self.outdir = os.path.abspath(outdir)
        path = os.path.join(self.outdir, "sweep.h5")
        if not os.path.isfile(path):
            raise ResultsError(f"{path}: no such file (is {outdir} a ctsweep results directory?)")
        try:
            with h5py.File(path, "r") as f:
                a = f.attrs
                self.schema_version = _num(a["schema_version"], int)
                if self.schema_version not in SCHEMA_VERSIONS:
                    raise ResultsError(f"{path}: schema_version {self.schema_version}, this analysis reads "
                                       f"versions {', '.join(map(str, SCHEMA_VERSIONS))}")
                self.config_yaml = _s(a["config_yaml"])
                self.config_path = _s(a["config_path"])
                self.created_utc = _s(a["created_utc"])
                self.updated_utc = _s(a["updated_utc"])
                self.software_version = _s(a["software_version"])
                self.dataset_fingerprint = _s(a["dataset_fingerprint"])
                self.state = _s(a["state"])
                d = f["dataset"]
                self.root = _s(d.attrs["root"])
                self.paths = [_s(p) for p in d["path"][...]]
                self.labels = np.asarray(d["label"][...], dtype=np.int64)
                self.split = np.asarray(d["split"][...], dtype=np.int64)
                self.skipped = [_s(p) for p in d["skipped"][...]]
                # Schema 2: the patient (group) of each image and its k-fold
                # (-1: test); without them each image is its own group.
                self.groups = [_s(g) for g in d["group"][...]] if "group" in d else None
                self.folds = np.asarray(d["fold"][...], dtype=np.int64) if "fold" in d else None
                rows = f["trials"][...]
        except ResultsError:
            raise
        except (OSError, KeyError, ValueError) as e:
            raise ResultsError(f"{path}: {e}") from None
        if not (len(self.paths) == len(self.labels) == len(self.split)):
            raise ResultsError(f"{path}: /dataset/path, /label and /split differ in length")
        self.trials = []
        for r in rows:
            row = {}
            for name in rows.dtype.names:
                v = r[name]
                row[name] = _s(v) if isinstance(v, (bytes, str)) or rows.dtype[name].kind in "SOU" else v.item()
            t = Trial(row)
            tpath = os.path.join(self.outdir, "trials", t.trial_id + ".h5")
            if os.path.isfile(tpath):
                t.read_file(tpath)
            else:
                t.file_error = f"{tpath}: no such file"
            self.trials.append(t)

    # ---- data set ----

    def split_counts(self):
        """{split name: (n, n_positive)}."""
        out = {}
        for k, name in enumerate(SPLIT_NAMES):
            m = self.split == k
            out[name] = (int(m.sum()), int(self.labels[m].sum()))
        return out

    def y(self, index):
        return self.labels[np.asarray(index, dtype=np.int64)]

    def image_path(self, row):
        """The image of /dataset row `row`: the recorded absolute path, else the
        same path relative to the data root re-rooted at a moved results
        directory (phantoms live in OUT/phantoms)."""
        p = self.paths[row]
        if os.path.isfile(p):
            return p
        rel = os.path.relpath(p, self.root) if self.root and p.startswith(self.root) else os.path.basename(p)
        for base in (os.path.join(self.outdir, "phantoms"), self.root):
            q = os.path.join(base, rel)
            if base and os.path.isfile(q):
                return q
        return None

    # ---- trials ----

    def models(self):
        """Model names in order of first appearance in the grid."""
        seen = []
        for t in self.trials:
            if t.model not in seen:
                seen.append(t.model)
        return seen

    def find_trial(self, prefix):
        """The trial whose id starts with `prefix` (hex digits, any case)."""
        want = prefix.strip().lower()
        hits = [t for t in self.trials if want and t.trial_id.lower().startswith(want)]
        if not hits:
            raise ResultsError(f"{self.outdir}: no trial id starts with '{prefix}'")
        if len(hits) > 1 and not any(t.trial_id.lower() == want for t in hits):
            raise ResultsError(f"{self.outdir}: trial id prefix '{prefix}' is ambiguous "
                               f"({', '.join(t.trial_id for t in hits[:5])})")
        return next((t for t in hits if t.trial_id.lower() == want), hits[0])

    @property
    def kfold(self):
        """Number of folds (0 without k-fold)."""
        fs = {t.fold for t in self.trials if t.fold >= 0}
        return max(fs) + 1 if fs else 0

    @property
    def test_at_every_epoch(self):
        return self.schema_version >= 2

    def random_backbones(self):
        """Models of the grid without a weights file: seeded random backbones."""
        have = weighted_models(self.config_yaml)
        return [m for m in self.models() if m not in have]

    def status_counts(self):
        c = {s: 0 for s in STATUSES}
        for t in self.trials:
            c[t.status] = c.get(t.status, 0) + 1
        return c
