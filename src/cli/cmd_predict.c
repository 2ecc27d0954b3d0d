/*
 * cmd_predict.c — `ctsweep predict MODEL.safetensors IMAGE... -o OUT.csv`:
 * the probabilities of an exported model for new images (train/predictor.h:
 * the sweep's own evaluation path, so they equal the trial's /test/prob),
 * and with --saliency DIR their Grad-CAMs (train/gradcam.h) as
 * DIR/saliency.h5 and one overlay PNG per image.
 *
 * A bad image is skipped with one line naming it, as the sweep's `skip`
 * policy does, the others are predicted, and the exit code is 3. Outputs are
 * written under temporary names and renamed when complete: an error leaves
 * no partial CSV or HDF5 file, and never damages an existing one.
 */
#include <getopt.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/backend.h"
#include "cli/commands.h"
#include "data/png_write.h"
#include "data/preprocess.h"
#include "results/cam_image.h"
#include "results/saliency_h5.h"
#include "train/gradcam.h"
#include "train/predictor.h"

typedef struct {
    const char *model, *output, *saliency;
    double threshold;  // NAN: the model's
    size_t batch, eval_rows;
    BackendOptions backend;
    int progress;
} PredictArgs;

static void predict_usage(FILE *f) {
    fprintf(f,
            "usage: ctsweep predict MODEL.safetensors IMAGE... -o OUT.csv [options]\n"
            "  MODEL.safetensors    a model written by `ctsweep export`\n"
            "  -o, --output FILE    the CSV to write: path,prob,label (prob = P(positive class),\n"
            "                       label = the positive class when prob >= threshold)\n"
            "  --threshold T        the decision threshold (default: the model's)\n"
            "  --saliency DIR       Grad-CAM of the positive class: DIR/saliency.h5 (/cam, /paths) and\n"
            "                       one PNG per image (the CAM over the greyscale input, colour bar)\n"
            "  --backend B          cpu (default) or cuda\n"
            "  --batch N            images per backbone pass (default 32; results do not depend on it)\n"
            "  --eval-rows N        images per head evaluation (default 32): the trial's batch_size\n"
            "                       reproduces its /test/prob bit for bit\n"
            "  --threads T          compute threads (default: all cores)\n"
            "  --no-progress        no progress line (it is shown only on a terminal anyway)\n"
            "exit status: 0 all predicted; 3 some images could not be read (one line each, the\n"
            "others predicted); 1 any other error (nothing written); 2 usage.\n");
}

static int parse_count(const char *s, size_t lo, size_t hi, size_t *out) {
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || s[0] == '-' || v < lo || v > hi) return -1;
    *out = (size_t)v;
    return 0;
}

static int parse_args(int argc, char **argv, PredictArgs *a, int *first_image) {
    static const struct option longopts[] = {
        {"output", required_argument, 0, 'o'},  {"threshold", required_argument, 0, 'T'},
        {"saliency", required_argument, 0, 's'}, {"backend", required_argument, 0, 'B'},
        {"batch", required_argument, 0, 'b'},   {"threads", required_argument, 0, 't'},
        {"no-progress", no_argument, 0, 'P'},   {"eval-rows", required_argument, 0, 'E'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    memset(a, 0, sizeof *a);
    a->threshold = NAN;
    a->batch = 32;
    a->eval_rows = 32;
    a->progress = isatty(STDERR_FILENO);
    backend_options_default(&a->backend);
    optind = 1;
    int c;
    size_t v;
    char *end;
    while ((c = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': a->output = optarg; break;
        case 's': a->saliency = optarg; break;
        case 'P': a->progress = 0; break;
        case 'T':
            a->threshold = strtod(optarg, &end);
            if (!*optarg || *end || !(a->threshold >= 0 && a->threshold <= 1)) {
                fprintf(stderr, "ctsweep predict: --threshold '%s': expected a probability in [0, 1]\n", optarg);
                return -1;
            }
            break;
        case 'B':
            if (backend_kind_parse(optarg, &a->backend.kind)) {
                fprintf(stderr, "ctsweep predict: --backend '%s': expected cpu or cuda\n", optarg);
                return -1;
            }
            break;
        case 'b':
            if (parse_count(optarg, 1, 4096, &a->batch)) {
                fprintf(stderr, "ctsweep predict: --batch '%s': expected an integer from 1 to 4096\n", optarg);
                return -1;
            }
            break;
        case 'E':
            if (parse_count(optarg, 1, 4096, &a->eval_rows)) {
                fprintf(stderr, "ctsweep predict: --eval-rows '%s': expected an integer from 1 to 4096\n", optarg);
                return -1;
            }
            break;
        case 't':
            if (parse_count(optarg, 1, 4096, &v)) {
                fprintf(stderr, "ctsweep predict: --threads '%s': expected a positive integer\n", optarg);
                return -1;
            }
            a->backend.threads = (int)v;
            break;
        case 'h': predict_usage(stdout); exit(CT_EXIT_OK);
        default: predict_usage(stderr); return -1;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "ctsweep predict: no model file given\n");
        return -1;
    }
    a->model = argv[optind];
    if (!a->output) {
        fprintf(stderr, "ctsweep predict: -o OUT.csv is required\n");
        return -1;
    }
    if (optind + 1 >= argc) {
        fprintf(stderr, "ctsweep predict: no images given\n");
        return -1;
    }
    *first_image = optind + 1;
    return 0;
}

// ---- output ----

// A CSV field: quoted (quotes doubled) when it holds a comma, quote or line break.
static void csv_field(FILE *f, const char *s) {
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

// DIR/<index>_<file name without extension>.png: the index keeps images of
// the same name from different folders apart.
static char *png_name(const char *dir, size_t index, size_t n_images, const char *path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t len = strlen(base);
    const char *dot = strrchr(base, '.');
    if (dot && dot != base) len = (size_t)(dot - base);
    int digits = 1;
    for (size_t m = n_images; m >= 10; m /= 10) digits++;
    return ct_asprintf("%s/%0*zu_%.*s.png", dir, digits, index, (int)len, base);
}

static int make_dir(const char *dir, CtError *err) {
    struct stat sb;
    if (stat(dir, &sb) == 0) return S_ISDIR(sb.st_mode) ? 0 : ct_errorf(err, "%s: exists and is not a folder", dir);
    if (mkdir(dir, 0777) != 0) return ct_errorf(err, "%s: cannot create the folder", dir);
    return 0;
}

// ---- the batches ----

typedef struct {
    const PredictArgs *a;
    Predictor pred;
    GradCam cam;
    int have_pred, have_cam, cam_shares_prefix;
    size_t S, per, B;
    uint8_t *rgb;     // (B, S, S, 3)
    float *x;         // (B, 3, S, S)
    float *cams;      // (B, h, w)
    uint8_t *picture; // (S, cam_image_width(S), 3)
    size_t *good;     // indices into the batch's paths that decoded
    CtError *errs;    // (B)
    int *ok;          // (B)
} Run;

// Decodes the batch's images in parallel; bad ones get a warning line in
// input order. Returns the count of good ones (their indices in r->good,
// their tensors packed into r->x and r->rgb in that order).
static size_t load_batch(Run *r, char **paths, size_t n) {
    ImageLimits lim;
    image_limits_default(&lim);
    const size_t S = r->S, px = S * S * 3;
    int *ok = r->ok;
#pragma omp parallel for schedule(dynamic, 1)
    for (size_t i = 0; i < n; i++) {
        r->errs[i].msg[0] = 0;
        ok[i] = preprocess_load_rgb8(r->rgb + i * px, paths[i], S, &lim, &r->errs[i]) == 0;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (!ok[i]) {
            ct_warn("skipping bad image: %s", r->errs[i].msg);
            continue;
        }
        if (m != i) memmove(r->rgb + m * px, r->rgb + i * px, px);
        r->good[m++] = i;
    }
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < m; k++) resize_to_tensor(r->x + k * r->per, r->rgb + k * px, S, S, r->pred.mf.norm);
    return m;
}

int cmd_predict(int argc, char **argv) {
    PredictArgs a;
    int first;
    if (parse_args(argc, argv, &a, &first)) return CT_EXIT_USAGE;
    char **paths = argv + first;
    const size_t n_images = (size_t)(argc - first);
    if (a.backend.threads > 0) omp_set_num_threads(a.backend.threads);
    CtError err = {{0}};
    Run r;
    memset(&r, 0, sizeof r);
    r.a = &a;
    SaliencyH5 sal;
    memset(&sal, 0, sizeof sal);
    sal.file = sal.cam = -1;
    FILE *csv = NULL;
    char *csv_tmp = ct_asprintf("%s.tmp.%ld", a.output, (long)getpid());
    const char **done_paths = ct_calloc(n_images, sizeof *done_paths);
    float *prob = ct_calloc(n_images, sizeof *prob);  // of the images predicted, in order
    size_t n_done = 0, n_bad = 0;
    int ok = 0;

    ModelFile mf;
    if (model_file_read(&mf, a.model, &err)) goto out;
    char device[128] = "cpu", uuid[64];
    if (a.backend.kind == BACKEND_CUDA) {
        // The first visible GPU, as a sweep's first local worker binds it.
        char name[96];
        if (backend_bind_gpu(0, name, sizeof name, uuid, sizeof uuid, &err)) goto out;
        snprintf(device, sizeof device, "cuda (%s)", name);
    }
    double threshold = isnan(a.threshold) ? mf.threshold : a.threshold;
    r.B = a.batch < n_images ? a.batch : n_images;
    a.backend.precision = mf.precision;  // the sweep's backbone arithmetic and kernels
    a.backend.conv_algo = mf.conv_algo;
    if (predictor_init(&r.pred, a.model, &mf, &a.backend, r.B, a.eval_rows, &err)) goto out;
    r.have_pred = 1;
    if (a.saliency) {
        // A model trained with unfreeze 1: its predictor's prefix is Grad-CAM's.
        r.cam_shares_prefix = mf.unfreeze == 1;
        if (gradcam_init(&r.cam, a.model, &mf, &a.backend, r.B, !r.cam_shares_prefix, &err)) goto out;
        r.have_cam = 1;
        if (make_dir(a.saliency, &err) ||
            saliency_h5_create(&sal, a.saliency, r.cam.h, r.cam.w, mf.model, &err))
            goto out;
    }
    r.S = mf.image_size;
    r.per = 3 * r.S * r.S;
    r.rgb = ct_try_aligned_alloc(r.B * r.per, 1);
    r.x = ct_try_aligned_alloc(r.B * r.per, sizeof(float));
    r.good = ct_calloc(r.B, sizeof *r.good);
    r.errs = ct_calloc(r.B, sizeof *r.errs);
    r.ok = ct_calloc(r.B, sizeof *r.ok);
    if (r.have_cam) {
        r.cams = ct_malloc_array(r.B * r.cam.h * r.cam.w, sizeof *r.cams);
        r.picture = ct_malloc_array(r.S * cam_image_width(r.S) * 3, 1);
    }
    if (!r.rgb || !r.x) {
        ct_errorf(&err, "out of memory for a batch of %zu images at %zu px", r.B, r.S);
        goto out;
    }
    double t0 = ct_now(), t_cam = 0;
    for (size_t i0 = 0; i0 < n_images; i0 += r.B) {
        size_t n = n_images - i0 < r.B ? n_images - i0 : r.B;
        size_t m = load_batch(&r, paths + i0, n);
        n_bad += n - m;
        if (predictor_add(&r.pred, r.x, m, prob, &err)) goto out;
        for (size_t k = 0; k < m; k++) done_paths[n_done + k] = paths[i0 + r.good[k]];
        if (r.have_cam && m) {
            double tc = ct_now();
            int rc = r.cam_shares_prefix ? gradcam_run_cut(&r.cam, r.pred.feat, m, r.pred.dim, r.cams, &err)
                                         : gradcam_run(&r.cam, r.x, m, r.cams, &err);
            if (rc || saliency_h5_append(&sal, r.cams, m, &err)) goto out;
            const size_t hw = r.cam.h * r.cam.w, px = r.S * r.S * 3;
            for (size_t k = 0; k < m; k++) {
                size_t idx = i0 + r.good[k];
                cam_image_render(r.picture, r.rgb + k * px, r.S, r.cams + k * hw, r.cam.h, r.cam.w);
                char *name = png_name(a.saliency, idx, n_images, paths[idx]);
                rc = png_write_rgb8(name, r.picture, cam_image_width(r.S), r.S, &err);
                free(name);
                if (rc) goto out;
            }
            t_cam += ct_now() - tc;
        }
        n_done += m;
        if (a.progress) fprintf(stderr, "\rpredict: %zu/%zu images", i0 + n, n_images);
    }
    if (a.progress) fputc('\n', stderr);
    if (predictor_finish(&r.pred, prob, &err)) goto out;
    if (r.pred.done != n_done) fatal("predict: %zu probabilities for %zu images", r.pred.done, n_done);
    csv = fopen(csv_tmp, "w");
    if (!csv) {
        ct_errorf(&err, "%s: cannot create the file", a.output);
        goto out;
    }
    fprintf(csv, "path,prob,label\n");
    for (size_t k = 0; k < n_done; k++) {
        csv_field(csv, done_paths[k]);
        fprintf(csv, ",%.9g,", (double)prob[k]);
        csv_field(csv, mf.classes[(double)prob[k] >= threshold ? 1 : 0]);
        fputc('\n', csv);
    }
    double dt = ct_now() - t0;
    if (ferror(csv) | (fclose(csv) != 0)) {
        csv = NULL;
        ct_errorf(&err, "%s: write failed", a.output);
        goto out;
    }
    csv = NULL;
    if (r.have_cam && saliency_h5_finish(&sal, done_paths, n_done, &err)) goto out;
    if (rename(csv_tmp, a.output) != 0) {
        ct_errorf(&err, "%s: cannot rename the finished file into place", a.output);
        goto out;
    }
    char cam_note[64] = "";
    if (r.have_cam)
        snprintf(cam_note, sizeof cam_note, "; Grad-CAM and PNG %.1f ms/image",
                 n_done ? 1e3 * t_cam / (double)n_done : 0.0);
    ct_info("predict: %zu images (%zu skipped), %s at %zu px on %s, %.2f s (%.1f images/s%s) -> %s", n_done, n_bad,
            mf.model, r.S, device, dt, dt > 0 ? (double)n_done / dt : 0.0,
            cam_note, a.output);
    ok = 1;
out:
    if (!ok) fprintf(stderr, "ctsweep: error: %s\n", err.msg);
    if (csv) fclose(csv);
    if (!ok) unlink(csv_tmp);
    saliency_h5_abort(&sal);
    free(csv_tmp);
    free(done_paths);
    free(prob);
    if (r.have_pred) predictor_free(&r.pred);
    if (r.have_cam) gradcam_free(&r.cam);
    ct_aligned_free(r.rgb);
    ct_aligned_free(r.x);
    free(r.cams);
    free(r.picture);
    free(r.good);
    free(r.errs);
    free(r.ok);
    if (!ok) return CT_EXIT_ERROR;
    return n_bad ? CT_EXIT_SKIPPED : CT_EXIT_OK;
}
