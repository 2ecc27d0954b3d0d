"""The report's image galleries: for each model's selected trial its false
positives and false negatives (most confident first) and a seeded sample of
true positives and true negatives, each image beside its Grad-CAM overlay.

The overlays come from the weights the trial kept (analysis/saliency.py:
`ctsweep export` + `ctsweep predict --saliency`, the images of one model in
one call). Without them (no ctsweep binary, `train.keep_weights: none`,
results from before weights were kept, or a report rule whose epoch the
trial kept no weights for) the galleries show the thumbnails alone and say
why.
"""
import hashlib
import os

import numpy as np

from analysis import images, saliency
from analysis.htmlfmt import esc, swatch

GALLERY_MAX = 24   # false positives / negatives shown per model
SAMPLE = 6         # true positives / negatives shown per model
PROB_TOL = 1e-6    # predict against the recorded test probabilities

CSS = """
.gallery{display:flex;flex-wrap:wrap;gap:10px}.gallery figure{margin:0;font-size:11px;text-align:center}
.gallery .pair{display:flex;gap:2px;justify-content:center}
.gallery img{height:128px;max-width:200px;object-fit:contain;background:#000;border:2px solid #ccc}
.gallery img.thumb{width:128px}
.gallery .fp img{border-color:#d62728}.gallery .fn img{border-color:#ff7f0e}
.gallery .tp img{border-color:#2ca02c}.gallery .tn img{border-color:#1f77b4}
.gallery figcaption{max-width:330px;margin:auto}.missing{width:128px;height:128px;
display:flex;align-items:center;justify-content:center;background:#eee;font-size:10px;word-break:break-all}
"""

TARGET = {"vgg": "the last ReLU of block5 (before its max pool)", "resnet": "the output of layer4",
          "densenet": "the final ReLU after norm5"}

LABELS = {
    "fp": "False positives (true negative, P > 0.5), most confident first",
    "fn": "False negatives (true positive, P ≤ 0.5), most confident first",
    "tp": "True positives (P > 0.5), a seeded random sample, by P",
    "tn": "True negatives (P ≤ 0.5), a seeded random sample, by P",
}


def _target(model):
    for k, v in TARGET.items():
        if model.startswith(k):
            return v
    return "the last stage's output"


def _select(e, kind, gallery_max):
    """Indices into the trial's test arrays for one gallery, and their count."""
    y, p, pred = e.y_test, e.p_test, e.pred05
    if kind == "fp":
        idx = np.flatnonzero((y == 0) & (pred == 1))
        return idx[np.argsort(-p[idx], kind="mergesort")][:gallery_max], len(idx)
    if kind == "fn":
        idx = np.flatnonzero((y == 1) & (pred == 0))
        return idx[np.argsort(p[idx], kind="mergesort")][:gallery_max], len(idx)
    want = 1 if kind == "tp" else 0
    idx = np.flatnonzero((y == want) & (pred == want))
    seed = int.from_bytes(hashlib.sha256(f"{e.t.trial_id}/{kind}".encode()).digest()[:8], "little")
    pick = np.random.default_rng(seed).choice(len(idx), size=min(SAMPLE, len(idx)), replace=False)
    pick = idx[np.sort(pick)]
    return pick[np.argsort(-p[pick], kind="mergesort")], len(idx)


class Galleries:
    def __init__(self, rep, want_cam=True, ctsweep=None, gallery_max=GALLERY_MAX):
        self.rep = rep
        self.want_cam = want_cam
        self.ctsweep = saliency.find_ctsweep(ctsweep) if want_cam else None
        self.explicit = ctsweep
        self.gallery_max = gallery_max
        self.cam_summary = []   # (trial id, kind, epoch, n images, seconds, max |dp|) per model

    def _thumb(self, row):
        name = f"{row}.png"
        dst = os.path.join(self.rep.dir, "thumbs", name)
        if os.path.exists(dst):
            return "thumbs/" + name, None
        src = self.rep.sweep.image_path(row)
        if src is None:
            return None, f"not found: {self.rep.sweep.paths[row]}"
        try:
            images.write_thumbnail(src, dst)
        except (OSError, ValueError) as ex:
            return None, str(ex)
        return "thumbs/" + name, None

    def _cams(self, e, rows):
        """({row: (relative png, prob)}, caption text) for one trial."""
        sweep = self.rep.sweep
        if not self.want_cam:
            return {}, "Grad-CAM overlays not made (--no-saliency)."
        if self.ctsweep is None:
            where = f"at {self.explicit}" if self.explicit else "(give --ctsweep PATH or set CTSWEEP_BIN)"
            return {}, f"Grad-CAM overlays not made: no ctsweep binary {where}."
        tpath = os.path.join(sweep.outdir, "trials", e.t.trial_id + ".h5")
        kept = saliency.kept_epochs(tpath)
        kind = saliency.pick_kind(kept, e.eval_epoch)
        if kind is None:
            have = ", ".join(f"{k} (epoch {v})" for k, v in sorted(kept.items())) or "none"
            return {}, (f"Grad-CAM overlays not made: the trial kept no weights for epoch {e.eval_epoch}, the one "
                        f"evaluated here (kept: {have}; see train.keep_weights).")
        paths, keep_rows = [], []
        for row in rows:
            src = sweep.image_path(row)
            if src is not None:
                paths.append(src)
                keep_rows.append(row)
        if not paths:
            return {}, "Grad-CAM overlays not made: none of the images was found."
        dest = os.path.join(self.rep.dir, "cam", e.t.trial_id)
        try:
            res, secs = saliency.overlays(self.ctsweep, sweep.outdir, e.t.trial_id, kind, paths, dest)
        except saliency.SaliencyError as ex:
            self.rep.warnings.append(f"Grad-CAM of trial {e.t.trial_id}: {ex}")
            return {}, f"Grad-CAM overlays not made: {ex}."
        pos = {int(r): i for i, r in enumerate(e.t.test_index)}
        out, worst = {}, 0.0
        for row, (png, prob) in zip(keep_rows, res):
            if png is not None:
                out[row] = ("cam/" + e.t.trial_id + "/" + os.path.basename(png), prob)
            if prob is not None and row in pos:
                worst = max(worst, abs(prob - float(e.p_test[pos[row]])))
        if worst > PROB_TOL:
            self.rep.warnings.append(f"Grad-CAM model of trial {e.t.trial_id}: ctsweep predict's probabilities "
                                     f"differ from the recorded test probabilities by up to {worst:.3g}")
        self.cam_summary.append((e.t.trial_id, kind, e.eval_epoch, len(paths), secs, worst))
        cap = (f"Right of each image: Grad-CAM of the positive logit at {_target(e.t.model)}, from the weights "
               f"the trial kept at its {kind} epoch {e.eval_epoch} (<code>ctsweep export</code> then "
               f"<code>ctsweep predict --saliency</code>: {len(paths)} images in {secs:.1f} s); red is where the "
               f"score rises most. predict's probabilities equal the recorded ones within {worst:.2g}.")
        return out, cap

    def _gallery(self, e, kind, idx, total, cams):
        p = e.p_test
        items = []
        for i in idx:
            row = int(e.t.test_index[i])
            rel, err = self._thumb(row)
            name = os.path.basename(self.rep.sweep.paths[row])
            if rel:
                pic = f'<img class=thumb src="{esc(rel)}" alt="{esc(name)}">'
            else:
                self.rep.warnings.append(f"gallery image of /dataset row {row}: {err}")
                pic = f'<div class="missing">{esc(err)}</div>'
            if row in cams:
                pic += f'<img src="{esc(cams[row][0])}" alt="Grad-CAM of {esc(name)}">'
            items.append(f'<figure class="{kind}"><div class=pair>{pic}</div><figcaption>P(positive) = {p[i]:.3f}'
                         f'<br><span title="{esc(self.rep.sweep.paths[row])}">{esc(name)}</span></figcaption>'
                         "</figure>")
        label = LABELS[kind]
        more = f" — showing {len(idx)} of {total}" if total > len(idx) else ""
        if not items:
            return f"<h4>{label}: none</h4>"
        return f'<h4>{label}: {total}{more}</h4><div class="gallery {kind}s">{"".join(items)}</div>'

    def html(self, selected, colours):
        out = ['<h2 id="galleries">Test images and where the model looks</h2><p class=cap>Each model\'s selected '
               'trial at P &gt; 0.5: its errors and a sample of its correct calls; thumbnails from the data set '
               'paths recorded in sweep.h5, each with its predicted P(positive) and file name (hover for the full '
               'path), and beside it the Grad-CAM overlay (CAM normalised to [0, 1] per image, bilinearly '
               'upsampled over the greyscale input, colour bar at the right).</p>']
        for e in selected:
            picks = {k: _select(e, k, self.gallery_max) for k in ("fp", "fn", "tp", "tn")}
            rows = [int(e.t.test_index[i]) for k in picks for i in picks[k][0]]
            cams, cap = self._cams(e, list(dict.fromkeys(rows)))
            out.append(f"<h3>{swatch(colours[e.t.model])}{esc(e.t.model)} — trial {e.t.trial_id}</h3>"
                       f"<p class=cap>{cap}</p>")
            for k in ("fp", "fn", "tp", "tn"):
                out.append(self._gallery(e, k, picks[k][0], picks[k][1], cams))
        if len(out) == 1:
            out.append("<p>No trial is done yet.</p>")
        return "".join(out)
