/*
 * validate.c — schema checks of sweep.h5 and the trial files.
 */
#include "results/validate.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/grid.h"
#include "results/h5io.h"
#include "util/util.h"

typedef struct {
    char file[8], kind[16], path[128], type[512];
    int rank;
    int since, until;  // the schema versions the entry applies to (until 0: no end)
} SchemaEntry;

// The newest version this build writes and the oldest it still reads.
#define SCHEMA_NEWEST 2
#define SCHEMA_OLDEST 1

static SchemaEntry *schema_parse(size_t *n) {
    size_t cap = 64;
    SchemaEntry *e = ct_calloc(cap, sizeof *e);
    *n = 0;
    const char *p = CTSWEEP_SCHEMA_TXT;
    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        char line[1024];
        snprintf(line, sizeof line, "%.*s", (int)(len < sizeof line ? len : sizeof line - 1), p);
        p += len + (eol ? 1 : 0);
        if (!line[0] || line[0] == '#') continue;
        if (*n == cap) e = ct_realloc(e, (cap *= 2) * sizeof *e);
        SchemaEntry *x = &e[*n];
        char since[16] = "";
        int got = sscanf(line, "%7s %15s %127s %511s %d %15s", x->file, x->kind, x->path, x->type, &x->rank, since);
        if (got < 5) continue;
        x->since = 1;
        x->until = 0;
        int v = 0, used = 0;
        if (got == 6 && sscanf(since, "v%d%n", &v, &used) == 1) {
            x->since = v;
            x->until = since[used] == '+' ? 0 : v;
        }
        (*n)++;
    }
    return e;
}

typedef struct {
    FILE *out;
    int problems;
    const char *file;
} Ctx;

static void problem(Ctx *c, const char *fmt, const char *a, const char *b) {
    fprintf(c->out, "%s: ", c->file);
    fprintf(c->out, fmt, a, b);
    fputc('\n', c->out);
    c->problems++;
}

static int type_matches(hid_t t, const char *want) {
    H5T_class_t cls = H5Tget_class(t);
    if (strcmp(want, "int") == 0) return cls == H5T_INTEGER;
    if (strcmp(want, "float") == 0) return cls == H5T_FLOAT;
    if (strcmp(want, "str") == 0) return cls == H5T_STRING;
    if (strncmp(want, "compound:", 9) == 0) {
        if (cls != H5T_COMPOUND) return 0;
        char fields[512];
        snprintf(fields, sizeof fields, "%s", want + 9);
        for (char *tok = strtok(fields, ","); tok; tok = strtok(NULL, ","))
            if (H5Tget_member_index(t, tok) < 0) return 0;
        return 1;
    }
    return 0;
}

static void check_entries(Ctx *c, hid_t f, const SchemaEntry *e, size_t n, const char *which, int version) {
    for (size_t i = 0; i < n; i++) {
        if (strcmp(e[i].file, which) != 0) continue;
        if (version < e[i].since || (e[i].until && version > e[i].until)) continue;
        int optional = strncmp(e[i].kind, "optional-", 9) == 0;
        const char *kind = optional ? e[i].kind + 9 : e[i].kind;
        char obj[128], attr[128] = "";
        snprintf(obj, sizeof obj, "%s", e[i].path);
        char *at = strchr(obj, '@');
        if (strcmp(kind, "attr") == 0) {
            if (at) {
                *at = '\0';
                snprintf(attr, sizeof attr, "%s", at + 1);
            } else {
                snprintf(attr, sizeof attr, "%s", obj + 1);
                snprintf(obj, sizeof obj, "/");
            }
        }
        if (strcmp(obj, "/") != 0 && H5Lexists(f, obj, H5P_DEFAULT) <= 0) {
            if (!optional) problem(c, "missing %s %s", kind, e[i].path);
            continue;
        }
        if (strcmp(kind, "group") == 0) continue;
        if (strcmp(kind, "attr") == 0) {
            hid_t a = H5Aopen_by_name(f, obj, attr, H5P_DEFAULT, H5P_DEFAULT);
            if (a < 0) {
                if (!optional) problem(c, "missing attribute %s%s", e[i].path, "");
                continue;
            }
            hid_t t = H5Aget_type(a);
            if (!type_matches(t, e[i].type)) problem(c, "attribute %s is not of type %s", e[i].path, e[i].type);
            H5Tclose(t);
            H5Aclose(a);
        } else {
            hid_t d = H5Dopen2(f, obj, H5P_DEFAULT);
            if (d < 0) {
                problem(c, "%s is not a dataset%s", e[i].path, "");
                continue;
            }
            hid_t t = H5Dget_type(d), s = H5Dget_space(d);
            if (!type_matches(t, e[i].type)) problem(c, "dataset %s is not of type %s", e[i].path, e[i].type);
            if (H5Sget_simple_extent_ndims(s) != e[i].rank) problem(c, "dataset %s has the wrong rank%s", e[i].path, "");
            H5Sclose(s);
            H5Tclose(t);
            H5Dclose(d);
        }
    }
}

// Dims of a dataset (up to 2), -1 when missing.
static int dims_of(hid_t f, const char *path, hsize_t *d0, hsize_t *d1) {
    *d0 = *d1 = 0;
    if (H5Lexists(f, path, H5P_DEFAULT) <= 0) return -1;
    hid_t d = H5Dopen2(f, path, H5P_DEFAULT);
    if (d < 0) return -1;
    hid_t s = H5Dget_space(d);
    hsize_t dims[8] = {0};
    int r = H5Sget_simple_extent_ndims(s);
    if (r > 0 && r <= 8) H5Sget_simple_extent_dims(s, dims, NULL);
    *d0 = dims[0];
    *d1 = r > 1 ? dims[1] : 0;
    H5Sclose(s);
    H5Dclose(d);
    return r;
}

static int64_t attr_int(hid_t f, const char *name) {
    int64_t v;
    return h5io_read_attr_num(f, name, H5T_NATIVE_INT64, &v) ? -1 : v;
}

static int valid_status(const char *s) {
    return !strcmp(s, "pending") || !strcmp(s, "running") || !strcmp(s, "done") || !strcmp(s, "failed");
}

// A file's schema_version when this build reads it (else a problem, and
// the newest version's entries are checked).
static int file_version(Ctx *c, hid_t f) {
    int64_t v;
    if (h5io_read_attr_num(f, "schema_version", H5T_NATIVE_INT64, &v)) return SCHEMA_NEWEST;  // reported as missing
    if (v < SCHEMA_OLDEST || v > SCHEMA_NEWEST) {
        char got[32], want[32];
        snprintf(got, sizeof got, "%lld", (long long)v);
        snprintf(want, sizeof want, "%d to %d", SCHEMA_OLDEST, SCHEMA_NEWEST);
        problem(c, "schema_version %s: this ctsweep reads versions %s", got, want);
        return SCHEMA_NEWEST;
    }
    return (int)v;
}

// ---- /model: the kept weights ----

typedef struct {
    Ctx *c;
    int bad;
    char first[96];
} ModelWalk;

static herr_t model_tensor(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    (void)info;
    ModelWalk *w = data;
    hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
    int ok = d >= 0;
    if (ok) {
        hid_t t = H5Dget_type(d), s = H5Dget_space(d);
        int nd = H5Sget_simple_extent_ndims(s);
        hsize_t dims[4] = {0, 0, 0, 0};
        ok = H5Tget_class(t) == H5T_FLOAT && H5Tget_size(t) == 4 && nd >= 1 && nd <= 4 &&
             H5Sget_simple_extent_dims(s, dims, NULL) == nd;
        for (int k = 0; ok && k < nd; k++) ok = dims[k] > 0;
        H5Sclose(s);
        H5Tclose(t);
        H5Dclose(d);
    }
    if (!ok && !w->bad) snprintf(w->first, sizeof w->first, "%s", name);
    w->bad += !ok;
    return 0;
}

// Size of dimension k of dataset path (0 when missing).
static hsize_t dim_of(hid_t f, const char *path, int k) {
    hsize_t dims[4] = {0, 0, 0, 0};
    if (H5Lexists(f, path, H5P_DEFAULT) <= 0) return 0;
    hid_t d = H5Dopen2(f, path, H5P_DEFAULT);
    if (d < 0) return 0;
    hid_t s = H5Dget_space(d);
    int nd = H5Sget_simple_extent_ndims(s);
    if (nd > k && nd <= 4) H5Sget_simple_extent_dims(s, dims, NULL);
    H5Sclose(s);
    H5Dclose(d);
    return dims[k];
}

static void check_model(Ctx *c, hid_t f, const char *status, hsize_t epochs_done) {
    if (H5Lexists(f, "model", H5P_DEFAULT) <= 0) return;
    if (strcmp(status, "done") != 0) problem(c, "/model in a trial that is %s, not done%s", status, "");
    hid_t m = H5Gopen2(f, "model", H5P_DEFAULT);
    if (m < 0) {
        problem(c, "/model is not a group%s%s", "", "");
        return;
    }
    H5G_info_t gi;
    hsize_t known = 0;
    static const char *const kinds[2] = {"selected", "final"};
    for (int k = 0; k < 2; k++) {
        if (H5Lexists(m, kinds[k], H5P_DEFAULT) <= 0) continue;
        known++;
        char path[32];
        snprintf(path, sizeof path, "model/%s", kinds[k]);
        int64_t epoch = -1, want = k == 0 ? attr_int(f, "selected_epoch") : (int64_t)epochs_done;
        hid_t g = H5Gopen2(f, path, H5P_DEFAULT);
        if (g < 0) {
            problem(c, "/%s is not a group%s", path, "");
            continue;
        }
        h5io_read_attr_num(g, "epoch", H5T_NATIVE_INT64, &epoch);
        if (epoch != want) problem(c, "/%s@epoch is not the trial's %s epoch", path, k == 0 ? "selected" : "last");
        ModelWalk w = {.c = c};
        H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, model_tensor, &w);
        if (w.bad)
            problem(c, "/%s/%s (and any other listed) is not a float32 tensor of 1 to 4 non-zero dimensions", path,
                    w.first);
        if (H5Lexists(g, "head.0.weight", H5P_DEFAULT) <= 0 || H5Lexists(g, "head.0.bias", H5P_DEFAULT) <= 0)
            problem(c, "/%s lacks head.0.weight or head.0.bias%s", path, "");
        int has_mean = H5Lexists(g, "head.standardize.mean", H5P_DEFAULT) > 0,
            has_inv = H5Lexists(g, "head.standardize.inv_std", H5P_DEFAULT) > 0;
        hsize_t in = dim_of(g, "head.0.weight", 1);
        if (has_mean != has_inv || (has_mean && (dim_of(g, "head.standardize.mean", 0) != in ||
                                                 dim_of(g, "head.standardize.inv_std", 0) != in)))
            problem(c, "/%s: head.standardize.mean and .inv_std are not both there with the head's input size%s",
                    path, "");
        H5Gclose(g);
    }
    if (H5Gget_info(m, &gi) >= 0 && gi.nlinks != known)
        problem(c, "/model holds something other than selected and final%s%s", "", "");
    H5Gclose(m);
    H5Eclear2(H5E_DEFAULT);
}

static void check_trial(Ctx *c, hid_t f, const SchemaEntry *e, size_t n, const char *id) {
    int version = file_version(c, f);
    check_entries(c, f, e, n, "trial", version);
    char tid[64], status[32];
    h5io_read_attr_text(f, "trial_id", tid, sizeof tid);
    h5io_read_attr_text(f, "status", status, sizeof status);
    if (strcmp(tid, id) != 0) problem(c, "trial_id attribute '%s' differs from the file name's '%s'", tid, id);
    if (!valid_status(status)) problem(c, "status '%s' is not pending, running, done or failed%s", status, "");
    hsize_t ne, x, vp0, vp1, vi, tp, tp1, ti, lr;
    dims_of(f, "epochs", &ne, &x);
    dims_of(f, "val/prob", &vp0, &vp1);
    dims_of(f, "val/index", &vi, &x);
    dims_of(f, "test/prob", &tp, &tp1);
    dims_of(f, "test/index", &ti, &x);
    dims_of(f, "lr_trace", &lr, &x);
    int64_t epochs = attr_int(f, "epochs"), ipe = attr_int(f, "iters_per_epoch");
    if (vp0 != ne || vp1 != vi) problem(c, "/val/prob is not [epochs, n_val] (%s%s)", "rows or columns disagree", "");
    if (ipe >= 0 && lr != ne * (hsize_t)ipe) problem(c, "/lr_trace length is not epochs x iters_per_epoch%s%s", "", "");
    if (epochs >= 0 && ne > (hsize_t)epochs) problem(c, "more /epochs rows than the trial's epochs%s%s", "", "");
    if (version >= 2 && (tp != ne || tp1 != ti))
        problem(c, "/test/prob is not [epochs, n_test] (%s%s)", "rows or columns disagree", "");
    if (version >= 2) {
        int64_t sel = attr_int(f, "selected_epoch");
        if (sel < 0 || (hsize_t)sel > ne || (!strcmp(status, "done") && ne > 0 && sel == 0))
            problem(c, "selected_epoch is not one of the epochs done%s%s", "", "");
    }
    if (!strcmp(status, "done")) {
        if (version < 2 && tp != ti) problem(c, "done, but /test/prob does not match /test/index%s%s", "", "");
        if (epochs >= 0 && ne != (hsize_t)epochs) problem(c, "done, but /epochs has fewer rows than epochs%s%s", "", "");
    }
    check_model(c, f, status, ne);
}

int validate_outdir(const char *outdir, FILE *out, int *n_files) {
    size_t n;
    SchemaEntry *e = schema_parse(&n);
    char *path = ct_asprintf("%s/sweep.h5", outdir);
    Ctx c = {.out = out, .file = path};
    *n_files = 0;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        problem(&c, "cannot open as HDF5%s%s", "", "");
        free(path);
        free(e);
        return c.problems;
    }
    (*n_files)++;
    int version = file_version(&c, f);
    check_entries(&c, f, e, n, "sweep", version);
    // Absent: format 1, from before the ids hashed the weights' content (a
    // value of the wrong type is the schema's problem above).
    int64_t id_format = GRID_ID_FORMAT_PATHS;
    if (H5Aexists(f, "trial_id_format") > 0 &&
        h5io_read_attr_num(f, "trial_id_format", H5T_NATIVE_INT64, &id_format) == 0 &&
        (id_format < GRID_ID_FORMAT_PATHS || id_format > GRID_ID_FORMAT)) {
        char got[32], want[32];
        snprintf(got, sizeof got, "%lld", (long long)id_format);
        snprintf(want, sizeof want, "%d to %d", GRID_ID_FORMAT_PATHS, GRID_ID_FORMAT);
        problem(&c, "trial_id_format %s: this ctsweep knows formats %s", got, want);
    }
    hsize_t np, nl, ns, ng, nf, x;
    dims_of(f, "dataset/path", &np, &x);
    dims_of(f, "dataset/label", &nl, &x);
    dims_of(f, "dataset/split", &ns, &x);
    if (np != nl || np != ns) problem(&c, "/dataset/path, /label and /split differ in length%s%s", "", "");
    if (version >= 2 && (dims_of(f, "dataset/group", &ng, &x) == 1) + (dims_of(f, "dataset/fold", &nf, &x) == 1) == 2 &&
        (ng != np || nf != np))
        problem(&c, "/dataset/group and /fold differ in length from /dataset/path%s%s", "", "");
    // Trial rows: id and status, then each trial file.
    typedef struct {
        char id[17];
        char status[8];
    } Row;
    hid_t d = H5Dopen2(f, "trials", H5P_DEFAULT);
    if (d >= 0) {
        hid_t s = H5Dget_space(d);
        hssize_t nt = H5Sget_simple_extent_npoints(s);
        H5Sclose(s);
        hid_t mt = H5Tcreate(H5T_COMPOUND, sizeof(Row));
        hid_t s17 = H5Tcopy(H5T_C_S1), s8 = H5Tcopy(H5T_C_S1);
        H5Tset_size(s17, 17);
        H5Tset_size(s8, 8);
        H5Tinsert(mt, "trial_id", HOFFSET(Row, id), s17);
        H5Tinsert(mt, "status", HOFFSET(Row, status), s8);
        // The row count comes from the file: a shape whose rows were never
        // written is a problem, not an allocation of its size.
        H5D_space_status_t status = H5D_SPACE_STATUS_ERROR;
        if (nt > 0 && (H5Dget_space_status(d, &status) < 0 || status != H5D_SPACE_STATUS_ALLOCATED)) {
            problem(&c, "/trials is not fully written%s%s", "", "");
            nt = 0;
        }
        Row *rows = ct_calloc(nt > 0 ? (size_t)nt : 1, sizeof *rows);
        if (nt > 0 && H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) < 0) {
            problem(&c, "cannot read /trials%s%s", "", "");
            nt = 0;
        }
        for (hssize_t i = 0; i < nt; i++) {
            char st[9];
            snprintf(st, sizeof st, "%.8s", rows[i].status);
            if (!valid_status(st)) problem(&c, "/trials row %s has status '%s'", rows[i].id, st);
            char link[64];
            snprintf(link, sizeof link, "trial/%.16s", rows[i].id);
            if (H5Lexists(f, link, H5P_DEFAULT) <= 0) problem(&c, "no /trial/%s link%s", rows[i].id, "");
            char *tp = ct_asprintf("%s/trials/%.16s.h5", outdir, rows[i].id);
            Ctx tc = {.out = out, .file = tp};
            hid_t tf = H5Fopen(tp, H5F_ACC_RDONLY, H5P_DEFAULT);
            if (tf < 0) {
                problem(&tc, "missing or not HDF5%s%s", "", "");
            } else {
                (*n_files)++;
                check_trial(&tc, tf, e, n, rows[i].id);
                H5Fclose(tf);
            }
            c.problems += tc.problems;
            free(tp);
        }
        free(rows);
        H5Tclose(s17);
        H5Tclose(s8);
        H5Tclose(mt);
        H5Dclose(d);
    }
    H5Fclose(f);
    H5Eclear2(H5E_DEFAULT);
    free(path);
    free(e);
    return c.problems;
}
