"""ctsweep analysis: turns a results directory (OUT/sweep.h5 and
OUT/trials/<trial_id>.h5, see hdf5_schema/README.md) into a leaderboard,
statistics and a self-contained HTML report.

It reads only the HDF5 results, never the training code, and needs only
h5py, numpy, scipy and matplotlib (Debian's python3-* packages).

    python3 -m analysis report OUTDIR -o REPORTDIR [--select RULE] [--prevalence P]
    python3 -m analysis leaderboard OUTDIR [--csv FILE] [--by rank|val_auc|val_acc|test_acc|test_auc]
    python3 -m analysis cv OUTDIR [--csv FILE]
    python3 -m analysis compare OUTDIR A B [--split test|val]
    python3 -m analysis hl OUTDIR --trial ID [-g 10]
"""

REQUIRED_MODULES = ("h5py", "numpy", "scipy", "matplotlib")
