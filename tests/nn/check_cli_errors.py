"""Bad input to `ctsweep features`: each case must exit non-zero with one
error line on stderr that names the file (and tensor) at fault, leave no
output file behind, and leave an existing output file untouched.

usage: check_cli_errors.py CTSWEEP WORK IMAGE
"""
import os
import json
import struct
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts", "lib"))
import safetensors_io  # noqa: E402

VGG16 = [64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0]


def vgg16_tensors():
    rng = np.random.default_rng(0)
    t, c, idx = {}, 3, 0
    for v in VGG16:
        if v == 0:
            idx += 1
            continue
        t[f"features.{idx}.weight"] = (rng.standard_normal((v, c, 3, 3)) * 0.05).astype(np.float32)
        t[f"features.{idx}.bias"] = np.zeros(v, np.float32)
        c, idx = v, idx + 2
    return t


def main():
    ctsweep, work, image = sys.argv[1:4]
    os.makedirs(work, exist_ok=True)
    good = vgg16_tensors()
    path = lambda n: os.path.join(work, n)  # noqa: E731
    safetensors_io.save_file(good, path("good.safetensors"))
    raw = open(path("good.safetensors"), "rb").read()
    hlen = struct.unpack("<Q", raw[:8])[0]

    cases = []  # (name, weights file, images, words expected in the error line)
    open(path("truncated.safetensors"), "wb").write(raw[: len(raw) // 2])
    cases.append(("truncated weights", path("truncated.safetensors"), [image], ["truncated.safetensors"]))
    open(path("short.safetensors"), "wb").write(raw[:5])
    cases.append(("file shorter than the header length", path("short.safetensors"), [image], ["short.safetensors"]))
    open(path("hlen.safetensors"), "wb").write(struct.pack("<Q", len(raw) + 100) + raw[8:])
    cases.append(("header length past end of file", path("hlen.safetensors"), [image], ["hlen.safetensors"]))
    # A well-formed header whose last tensor claims bytes past the data section.
    h = json.loads(raw[8 : 8 + hlen])
    last = max((k for k in h if k != "__metadata__"), key=lambda k: h[k]["data_offsets"][1])
    h[last]["data_offsets"][1] += 4096
    h[last]["shape"] = [h[last]["shape"][0] + 1024]
    hdr = json.dumps(h).encode()
    open(path("offsets.safetensors"), "wb").write(struct.pack("<Q", len(hdr)) + hdr + raw[8 + hlen :])
    cases.append(("offsets outside the data", path("offsets.safetensors"), [image],
                  ["offsets.safetensors", last, "outside the data"]))
    wrong = dict(good)
    wrong["features.0.weight"] = np.zeros((64, 3, 5, 5), np.float32)
    safetensors_io.save_file(wrong, path("shape.safetensors"))
    cases.append(("wrong shape", path("shape.safetensors"), [image],
                  ["shape.safetensors", "features.0.weight", "[64,3,5,5]", "[64,3,3,3]"]))
    missing = dict(good)
    del missing["features.28.bias"]
    safetensors_io.save_file(missing, path("missing.safetensors"))
    cases.append(("missing tensor", path("missing.safetensors"), [image], ["missing.safetensors", "features.28.bias"]))
    cases.append(("weights file does not exist", path("nonexistent.safetensors"), [image], ["nonexistent.safetensors"]))
    open(path("text.png"), "w").write("this is not an image\n")
    cases.append(("non-image input", path("good.safetensors"), [image, path("text.png")], ["text.png", "not a PNG or JPEG"]))
    open(path("empty.jpg"), "wb").close()
    cases.append(("empty image file", path("good.safetensors"), [path("empty.jpg")], ["empty.jpg"]))
    cases.append(("image does not exist", path("good.safetensors"), [path("nope.png")], ["nope.png"]))

    out = path("out.h5")
    sentinel = b"existing results must survive"
    passed = failed = 0
    for name, weights, images, words in cases:
        open(out, "wb").write(sentinel)
        r = subprocess.run([ctsweep, "features", "--model", "vgg16", "--weights", weights, "--image-size", "64",
                            "-o", out] + images, capture_output=True, text=True)
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        errors = [l for l in lines if "error" in l]
        problems = []
        if r.returncode == 0:
            problems.append("exit code 0")
        if r.returncode < 0:
            problems.append(f"killed by signal {-r.returncode}")
        if len(errors) != 1:
            problems.append(f"{len(errors)} error lines")
        elif not all(w in errors[0] for w in words):
            problems.append(f"error line lacks {[w for w in words if w not in errors[0]]}")
        if open(out, "rb").read() != sentinel:
            problems.append("existing output file changed")
        leftovers = [f for f in os.listdir(work) if f.startswith("out.h5.tmp")]
        if leftovers:
            problems.append(f"temporary files left: {leftovers}")
        ok = not problems
        passed += ok
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name}: exit {r.returncode}: {errors[0] if errors else lines}"
              + ("" if ok else f"  <-- {'; '.join(problems)}"))
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
