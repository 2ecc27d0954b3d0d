/*
 * cmd_export.c — `ctsweep export OUTDIR --trial ID [--epoch selected|final]
 * -o MODEL.safetensors`: one self-contained model from a done trial: the
 * backbone under torchvision's names (the frozen stages from the weights
 * the sweep used, or its seeded random backbone, rebuilt from the stored
 * configuration; the unfrozen stages as trained), the head as
 * head.<i>.weight|bias, its standardisation as head.standardize.mean|std
 * (and inv_std, the multipliers training used, which predict reads),
 * and __metadata__ saying how to use it (model, image size, normalisation,
 * classes, the val-chosen threshold, provenance). Format "ctsweep-model/1":
 * README "Keeping and exporting a model".
 *
 * Every error is one line naming the file or option at fault, with a
 * non-zero exit; -o is written through a temporary file and a rename, so a
 * failure leaves nothing behind and an existing file whole.
 */
#include <dirent.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli/commands.h"
#include "config/config.h"
#include "nn/model_raw.h"
#include "nn/models.h"
#include "nn/safetensors_write.h"
#include "nn/weights_digest.h"
#include "results/h5io.h"
#include "results/kept_weights.h"
#include "train/metrics.h"
#include "util/buf.h"

#define EXPORT_FORMAT "ctsweep-model/1"

typedef struct {
    const char *outdir, *trial, *output;
    int kind;
} ExportArgs;

static void export_usage(FILE *f) {
    fprintf(f, "usage: ctsweep export OUTDIR --trial ID [--epoch selected|final] -o MODEL.safetensors\n"
               "  --trial ID           a done trial (ctsweep status OUTDIR lists them)\n"
               "  --epoch K            selected (default: the epoch val selected) or final (the last);\n"
               "                       the trial must have kept that epoch's weights (train.keep_weights)\n"
               "  -o, --output FILE    the safetensors file to write\n");
}

static int parse_args(int argc, char **argv, ExportArgs *a) {
    static const struct option longopts[] = {{"trial", required_argument, 0, 't'},
                                             {"epoch", required_argument, 0, 'e'},
                                             {"output", required_argument, 0, 'o'},
                                             {"help", no_argument, 0, 'h'},
                                             {0, 0, 0, 0}};
    memset(a, 0, sizeof *a);
    a->kind = KEEP_SELECTED;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 't': a->trial = optarg; break;
        case 'o': a->output = optarg; break;
        case 'e':
            if (strcmp(optarg, "selected") == 0) a->kind = KEEP_SELECTED;
            else if (strcmp(optarg, "final") == 0) a->kind = KEEP_FINAL;
            else {
                fprintf(stderr, "ctsweep export: --epoch must be selected or final, not '%s'\n", optarg);
                return CT_EXIT_USAGE;
            }
            break;
        case 'h': export_usage(stdout); return -1;
        default:
            fprintf(stderr, "ctsweep export: unknown option or missing value: %s\n", argv[optind - 1]);
            return CT_EXIT_USAGE;
        }
    }
    if (optind < argc) a->outdir = argv[optind++];
    if (optind < argc) {
        fprintf(stderr, "ctsweep export: unexpected argument '%s'\n", argv[optind]);
        return CT_EXIT_USAGE;
    }
    const char *missing = !a->outdir   ? "OUTDIR (a results folder)"
                          : !a->trial  ? "--trial ID"
                          : !a->output ? "-o MODEL.safetensors"
                                       : NULL;
    if (missing) {
        fprintf(stderr, "ctsweep export: %s is required (usage: ctsweep export OUTDIR --trial ID [--epoch "
                        "selected|final] -o MODEL.safetensors)\n", missing);
        return CT_EXIT_USAGE;
    }
    return 0;
}

// ---- what the sweep recorded ----

typedef struct {
    SweepConfig cfg;
    int cfg_ok;
    char *fingerprint, *weights_sha256;
    uint8_t *label;  // (n_dataset) 1 = positive
    size_t n_dataset;
} Manifest;

static int read_u8_all(hid_t f, const char *name, uint8_t **out, size_t *n) {
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) return -1;
    hid_t s = H5Dget_space(d);
    hssize_t k = H5Sget_simple_extent_npoints(s);
    int rc = k < 0 ? -1 : 0;
    *out = ct_malloc(k > 0 ? (size_t)k : 1);
    if (rc == 0 && k > 0 && H5Dread(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) < 0) rc = -1;
    *n = k > 0 ? (size_t)k : 0;
    H5Sclose(s);
    H5Dclose(d);
    return rc;
}

static int manifest_read(Manifest *m, const char *outdir, CtError *err) {
    memset(m, 0, sizeof *m);
    char *path = ct_asprintf("%s/sweep.h5", outdir);
    int rc = 0;
    if (access(path, F_OK) != 0) {
        rc = ct_errorf(err, "%s: no sweep.h5 here, not a ctsweep results folder", outdir);
        free(path);
        return rc;
    }
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        rc = ct_errorf(err, "%s: not a readable HDF5 file (see ctsweep validate %s)", path, outdir);
        free(path);
        H5Eclear2(H5E_DEFAULT);
        return rc;
    }
    char *yaml = h5io_read_attr_str(f, "config_yaml"), *cpath = h5io_read_attr_str(f, "config_path");
    m->fingerprint = h5io_read_attr_str(f, "dataset_fingerprint");
    m->weights_sha256 = h5io_read_attr_str(f, "weights_sha256");
    if (!yaml || !m->fingerprint) rc = ct_errorf(err, "%s: config_yaml or dataset_fingerprint missing", path);
    if (rc == 0 && read_u8_all(f, "dataset/label", &m->label, &m->n_dataset))
        rc = ct_errorf(err, "%s: /dataset/label missing or unreadable", path);
    H5Fclose(f);
    H5Eclear2(H5E_DEFAULT);
    CtError perr = {{0}};
    if (rc == 0 && config_parse_stored(&m->cfg, cpath && cpath[0] ? cpath : path, yaml, strlen(yaml), &perr))
        rc = ct_errorf(err, "%s: the stored configuration does not load (%s)", path, perr.msg);
    m->cfg_ok = rc == 0;
    free(yaml);
    free(cpath);
    free(path);
    return rc;
}

static void manifest_free(Manifest *m) {
    if (m->cfg_ok) config_free(&m->cfg);
    free(m->fingerprint);
    free(m->weights_sha256);
    free(m->label);
    memset(m, 0, sizeof *m);
}

// Trial ids are hex digests; anything else is no trial (and never a path).
static int id_is_plain(const char *id) {
    if (!id[0] || strlen(id) > 64) return 0;
    for (const char *p = id; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' || *p == '-'))
            return 0;
    return 1;
}

// The trial id `given` names in OUTDIR/trials: the whole id or a unique
// prefix, in either case (as the analysis takes them). 0 with id set.
static int resolve_trial(const char *outdir, const char *given, char *id, size_t idsize, CtError *err) {
    char *dir = ct_asprintf("%s/trials", outdir);
    DIR *d = id_is_plain(given) ? opendir(dir) : NULL;
    size_t n = 0, glen = strlen(given);
    char first[80] = "", second[80] = "";
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len < 4 || strcmp(e->d_name + len - 3, ".h5") != 0 || len - 3 >= sizeof first) continue;
        if (len - 3 < glen || strncasecmp(e->d_name, given, glen) != 0) continue;
        if (len - 3 == glen) {  // the whole id: no other can be meant
            snprintf(first, sizeof first, "%.*s", (int)(len - 3), e->d_name);
            n = 1;
            break;
        }
        snprintf(n == 0 ? first : second, sizeof first, "%.*s", (int)(len - 3), e->d_name);
        n++;
    }
    if (d) closedir(d);
    free(dir);
    if (n == 0)
        return ct_errorf(err, "%s: no trial %s here (ctsweep status %s lists the trials)", outdir, given, outdir);
    if (n > 1)
        return ct_errorf(err, "%s: trial prefix %s is ambiguous: %zu trials start with it (%s, %s%s)", outdir,
                         given, n, first, second, n > 2 ? ", ..." : "");
    snprintf(id, idsize, "%s", first);
    return 0;
}

typedef struct {
    char model[32], status[32], software[64];
    int64_t unfreeze, n_epochs;
    float *val_prob;   // val probabilities at the exported epoch (n_val)
    uint8_t *val_y;
    size_t n_val;
    KeptWeights w;
} TrialView;

static int trial_read(TrialView *t, const char *path, const char *id, int kind, const Manifest *m, CtError *err) {
    memset(t, 0, sizeof *t);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        H5Eclear2(H5E_DEFAULT);
        return ct_errorf(err, "%s: not a readable HDF5 file", path);
    }
    int rc = 0;
    if (h5io_read_attr_text(f, "model", t->model, sizeof t->model) ||
        h5io_read_attr_text(f, "status", t->status, sizeof t->status) ||
        h5io_read_attr_num(f, "unfreeze", H5T_NATIVE_INT64, &t->unfreeze))
        rc = ct_errorf(err, "%s: attributes model, status or unfreeze missing", path);
    h5io_read_attr_text(f, "software_version", t->software, sizeof t->software);
    if (rc == 0 && strcmp(t->status, "done") != 0)
        rc = ct_errorf(err, "%s: trial %s is %s, not done: it has no weights to export yet", path, id, t->status);
    if (rc == 0) {
        int r = kept_weights_read_h5(f, kind, &t->w, err);
        if (r > 0)
            rc = ct_errorf(err, "%s: trial %s kept no %s weights (train.keep_weights decides which a trial keeps)%s",
                           path, id, keep_kind_name(kind),
                           kind == KEEP_SELECTED ? "; try --epoch final" : "; try --epoch selected");
        else if (r < 0) rc = ct_error_prefix(err, "%s", path);
    }
    // The val probabilities at that epoch and the val labels: the threshold.
    hid_t d = -1, s = -1;
    hsize_t dims[2] = {0, 0};
    if (rc == 0) {
        d = H5Dopen2(f, "val/prob", H5P_DEFAULT);
        s = d >= 0 ? H5Dget_space(d) : -1;
        if (s < 0 || H5Sget_simple_extent_ndims(s) != 2 || H5Sget_simple_extent_dims(s, dims, NULL) < 0 ||
            t->w.epoch > dims[0])
            rc = ct_errorf(err, "%s: /val/prob does not hold epoch %zu", path, t->w.epoch);
    }
    if (rc == 0) {
        t->n_val = (size_t)dims[1];
        t->val_prob = ct_malloc_array(t->n_val ? t->n_val : 1, sizeof(float));
        t->val_y = ct_malloc(t->n_val ? t->n_val : 1);
        int64_t *idx = ct_malloc_array(t->n_val ? t->n_val : 1, sizeof *idx);
        hsize_t start[2] = {t->w.epoch - 1, 0}, count[2] = {1, dims[1]};
        hid_t mem = H5Screate_simple(2, count, NULL);
        if (H5Sselect_hyperslab(s, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
            H5Dread(d, H5T_NATIVE_FLOAT, mem, s, H5P_DEFAULT, t->val_prob) < 0)
            rc = ct_errorf(err, "%s: /val/prob cannot be read", path);
        H5Sclose(mem);
        hid_t di = H5Dopen2(f, "val/index", H5P_DEFAULT);
        if (rc == 0 && (di < 0 || H5Dread(di, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, idx) < 0))
            rc = ct_errorf(err, "%s: /val/index cannot be read", path);
        if (di >= 0) H5Dclose(di);
        for (size_t i = 0; rc == 0 && i < t->n_val; i++) {
            if (idx[i] < 0 || (size_t)idx[i] >= m->n_dataset) rc = ct_errorf(err, "%s: /val/index out of range", path);
            else t->val_y[i] = m->label[idx[i]] != 0;
        }
        free(idx);
    }
    if (s >= 0) H5Sclose(s);
    if (d >= 0) H5Dclose(d);
    H5Fclose(f);
    H5Eclear2(H5E_DEFAULT);
    return rc;
}

static void trial_view_free(TrialView *t) {
    kept_weights_free(&t->w);
    free(t->val_prob);
    free(t->val_y);
}

// ---- the backbone the sweep ran ----

// The weights file a model's backbone came from, checked against the
// SHA-256 the sweep recorded; "" for its seeded random backbone.
static int backbone_source(const Manifest *m, const char *model, const char **weights, CtError *err) {
    *weights = config_weights(&m->cfg, model);
    if (!(*weights)[0]) return 0;
    if (access(*weights, R_OK) != 0)
        return ct_errorf(err, "%s (weights.%s): not readable here; the export needs the backbone weights the sweep "
                         "used", *weights, model);
    char hex[WEIGHTS_DIGEST_HEX + 1], want[WEIGHTS_DIGEST_HEX + 1] = "";
    if (weights_digest(*weights, hex, err)) return -1;
    size_t len = strlen(model);
    for (const char *l = m->weights_sha256; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (strncmp(l, model, len) == 0 && l[len] == ' ') snprintf(want, sizeof want, "%.64s", l + len + 1);
    if (want[0] && strcmp(want, hex) != 0)
        return ct_errorf(err, "%s (weights.%s): changed since the sweep ran (SHA-256 %.16s, was %.16s)", *weights,
                         model, hex, want);
    return 0;
}

// ---- metadata ----

// The class names in label order (label 1 the positive class), as JSON:
// the folders of each label, joined by '+' when several share one.
static char *classes_json(const DataSpec *d) {
    Buf b = {0};
    buf_put(&b, "[", 1);
    for (int label = 0; label < 2; label++) {
        buf_put(&b, label ? ",\"" : "\"", label ? 2 : 1);
        int first = 1;
        for (size_t i = 0; i < d->n_classes; i++) {
            if (d->classes[i].label != label) continue;
            if (!first) buf_put(&b, "+", 1);
            for (const char *p = d->classes[i].folder; *p; p++) {
                if (*p == '"' || *p == '\\') buf_put(&b, "\\", 1);
                buf_put(&b, p, 1);
            }
            first = 0;
        }
        buf_put(&b, "\"", 1);
    }
    buf_put(&b, "]", 2);  // with the terminating zero
    return (char *)b.p;
}

static char *head_json(const KeptWeights *w, double dropout, int standardize) {
    Buf b = {0};
    char num[48];
    buf_put(&b, "{\"hidden\":[", 11);
    size_t n_lin = 0;
    while (1) {
        snprintf(num, sizeof num, "head.%zu.weight", n_lin);
        if (!kept_weights_find(w, num)) break;
        n_lin++;
    }
    for (size_t l = 0; l + 1 < n_lin; l++) {
        snprintf(num, sizeof num, "head.%zu.weight", l);
        int k = snprintf(num, sizeof num, "%s%zu", l ? "," : "", kept_weights_find(w, num)->shape[0]);
        buf_put(&b, num, (size_t)k);
    }
    int k = snprintf(num, sizeof num, "],\"dropout\":%.9g,\"standardize\":%s}", dropout, standardize ? "true" : "false");
    buf_put(&b, num, (size_t)k + 1);
    return (char *)b.p;
}

// ---- the command ----

static int export_model(const ExportArgs *a, CtError *err) {
    Manifest m;
    TrialView t;
    memset(&t, 0, sizeof t);
    RawTensors raw = {0};
    NNGraph g;
    int have_graph = 0, rc = manifest_read(&m, a->outdir, err);
    char trial[80] = "";
    if (rc == 0) rc = resolve_trial(a->outdir, a->trial, trial, sizeof trial, err);
    char *tpath = ct_asprintf("%s/trials/%s.h5", a->outdir, trial);
    if (rc == 0) rc = trial_read(&t, tpath, trial, a->kind, &m, err);
    const char *weights = "";
    if (rc == 0) rc = backbone_source(&m, t.model, &weights, err);
    SafeTensors wst;
    int have_wst = 0;
    if (rc == 0 && weights[0]) rc = st_open(&wst, weights, err), have_wst = rc == 0;
    if (rc == 0) rc = model_build(&g, t.model, err), have_graph = rc == 0;
    if (rc == 0) rc = model_raw_tensors(&g, have_wst ? &wst : NULL, m.cfg.backbone_seed, &raw, err);
    if (have_wst) st_close(&wst);
    // The trained tensors: the unfrozen stages replace their frozen values.
    const float *std_mean = NULL, *std_inv = NULL;
    size_t std_n = 0;
    for (size_t i = 0; rc == 0 && i < t.w.n_tensors; i++) {
        const KeptTensor *k = &t.w.tensors[i];
        const float *v = t.w.data + k->offset;
        if (strcmp(k->name, "head.standardize.mean") == 0) std_mean = v, std_n = k->numel;
        else if (strcmp(k->name, "head.standardize.inv_std") == 0) std_inv = v;
        if (strncmp(k->name, "head.", 5) == 0) continue;
        RawTensor *r = model_raw_find(&raw, k->name);
        size_t numel = 1;
        for (size_t d = 0; r && d < r->ndim; d++) numel *= r->shape[d];
        if (!r || numel != k->numel)
            rc = ct_errorf(err, "%s: /model/%s/%s is no tensor of %s's backbone", tpath, keep_kind_name(a->kind),
                           k->name, t.model);
        else memcpy(r->data, v, numel * sizeof(float));
    }
    size_t nt = raw.n + t.w.n_tensors + 1;  // + head.standardize.std
    StWriteTensor *out = ct_calloc(nt ? nt : 1, sizeof *out);
    float *std = NULL;
    size_t n_out = 0;
    for (size_t i = 0; rc == 0 && i < raw.n; i++) {
        StWriteTensor *o = &out[n_out++];
        snprintf(o->name, sizeof o->name, "%s", raw.t[i].name);
        o->ndim = raw.t[i].ndim;
        memcpy(o->shape, raw.t[i].shape, sizeof raw.t[i].shape);
        o->data = raw.t[i].data;
    }
    for (size_t i = 0; rc == 0 && i < t.w.n_tensors; i++) {
        const KeptTensor *k = &t.w.tensors[i];
        if (strncmp(k->name, "head.", 5) != 0) continue;  // head.standardize.inv_std too: predict's exact multipliers
        StWriteTensor *o = &out[n_out++];
        snprintf(o->name, sizeof o->name, "%s", k->name);
        o->ndim = k->ndim;
        memcpy(o->shape, k->shape, sizeof k->shape);
        o->data = t.w.data + k->offset;
    }
    if (rc == 0 && std_mean) {
        if (!std_inv) rc = ct_errorf(err, "%s: head.standardize.mean without head.standardize.inv_std", tpath);
        // std = 1 / inv_std rounded to float (inv_std 0, a constant feature, gives inf: (x - mean) / inf is 0,
        // as (x - mean) * 0 is).
        std = ct_malloc_array(std_n ? std_n : 1, sizeof *std);
        for (size_t i = 0; rc == 0 && i < std_n; i++) std[i] = 1.0f / std_inv[i];
        StWriteTensor *o = &out[n_out++];
        snprintf(o->name, sizeof o->name, "head.standardize.std");
        o->ndim = 1;
        o->shape[0] = std_n;
        o->data = std;
    }
    if (rc == 0) {
        HeadSpec hs;
        config_head_spec(&hs, &m.cfg, t.model, 0);
        double thr = metrics_youden_threshold(t.val_prob, t.val_y, t.n_val);
        char image_size[32], epoch[32], unfreeze[32], threshold[48];
        snprintf(image_size, sizeof image_size, "%zu", m.cfg.image_size);
        snprintf(epoch, sizeof epoch, "%zu", t.w.epoch);
        snprintf(unfreeze, sizeof unfreeze, "%lld", (long long)t.unfreeze);
        snprintf(threshold, sizeof threshold, "%.9g", thr);
        char *classes = classes_json(&m.cfg.data), *head = head_json(&t.w, hs.dropout, std_mean != NULL);
        StMeta meta[] = {{"format", EXPORT_FORMAT},
                         {"model", t.model},
                         {"image_size", image_size},
                         {"normalize", norm_mode_name(m.cfg.normalize)},
                         {"classes", classes},
                         {"threshold", threshold},
                         {"epoch", epoch},
                         {"epoch_kind", keep_kind_name(a->kind)},
                         {"trial_id", trial},
                         {"dataset_fingerprint", m.fingerprint},
                         {"software_version", t.software[0] ? t.software : CTSWEEP_VERSION},
                         {"unfreeze", unfreeze},
                         {"head", head},
                         {"feature_store", feature_store_name(m.cfg.feature_store)},
                         {"precision", precision_name(m.cfg.backend.precision)},
                         {"conv_algo", conv_algo_name(m.cfg.backend.conv_algo)}};
        rc = st_write_f32(a->output, out, n_out, meta, sizeof meta / sizeof meta[0], err);
        if (rc == 0)
            printf("%s: %s trial %s, %s epoch %zu (%zu tensors, threshold %s)\n", a->output, t.model, trial,
                   keep_kind_name(a->kind), t.w.epoch, n_out, threshold);
        free(classes);
        free(head);
    }
    free(std);
    free(out);
    model_raw_free(&raw);
    if (have_graph) graph_free(&g);
    trial_view_free(&t);
    manifest_free(&m);
    free(tpath);
    return rc;
}

int cmd_export(int argc, char **argv) {
    ExportArgs a;
    int prc = parse_args(argc, argv, &a);
    if (prc < 0) return CT_EXIT_OK;
    if (prc) return prc;
    CtError err = {{0}};
    if (export_model(&a, &err)) {
        fprintf(stderr, "ctsweep export: %s\n", err.msg);
        return CT_EXIT_ERROR;
    }
    return CT_EXIT_OK;
}
