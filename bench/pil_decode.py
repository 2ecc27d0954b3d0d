"""PIL's side of bench/decode: open, convert('RGB'), resize((S, S),
BILINEAR) for every image of the data set, in THREADS worker processes
(PIL releases the GIL only partly, so processes are the fair comparison).

usage: pil_decode.py ROOT SIZE THREADS ROUNDS
"""
import os
import sys
import time
from multiprocessing import Pool

import numpy as np
from PIL import Image

SIZE = 224


def load(path):
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB").resize((SIZE, SIZE), Image.BILINEAR)).nbytes


def main():
    global SIZE
    root, SIZE, threads, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    paths = [os.path.join(root, c, f) for c in ("CT_NonCOVID", "CT_COVID")
             for f in sorted(os.listdir(os.path.join(root, c))) if not f.startswith(".")]
    best = 1e30
    with Pool(threads) as pool:
        for _ in range(rounds):
            t = time.perf_counter()
            pool.map(load, paths, chunksize=8)
            best = min(best, time.perf_counter() - t)
    print(f"images={len(paths)} size={SIZE} threads={threads} seconds={best:.3f} images_per_s={len(paths) / best:.1f}")


if __name__ == "__main__":
    main()
