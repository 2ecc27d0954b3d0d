/*
 * fuzz_results.c — libFuzzer target over the results readers that
 * `ctsweep run --resume` and `ctsweep validate` use on an existing OUTDIR:
 * validate_outdir, trial_file_read and checkpoint_read. Any crash,
 * sanitizer report, leak, leaked HDF5 handle or hang is a bug in
 * src/results/.
 *
 * Mutating HDF5 bytes at random mostly exercises HDF5's own parser, so the
 * target is structure-aware: LLVMFuzzerInitialize writes a valid results
 * directory once with the project's writers (manifest_write,
 * trial_file_write, checkpoint_write) from a small grid of 4 trials in 2
 * runs (done; running with a checkpoint; failed; pending with a
 * checkpoint), and each input is a list of edits (results_edit.h) applied
 * to a fresh copy of it before the readers run. The readers are driven as
 * the resume path drives them (src/sweep/resume.c, master_resume): a
 * TrialRecord initialised with the trial's budget and split sizes, then the
 * checkpoint the trial file names.
 *
 * Edits that overwrite bytes inside a file reach HDF5's parser, whose
 * crashes we cannot fix; they run only with CTSWEEP_FUZZ_RESULTS_RAW=1
 * (run.sh --raw), otherwise those edits append their bytes instead.
 */
#define _GNU_SOURCE
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "config/grid.h"
#include "data/dataset.h"
#include "fuzz_tmp.h"
#include "results/checkpoint.h"
#include "results/h5io.h"
#include "results/manifest.h"
#include "results/records.h"
#include "results/trial_file.h"
#include "results/validate.h"
#include "results_edit.h"
#include "util/buf.h"
#include "util/util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define N_ITEMS 12  // 6 train, 3 val, 3 test
#define N_VAL 3
#define N_TEST 3
#define IPE 3  // iterations per epoch
#define MAX_FILES 16
#define MAX_NAMES 64

static const char CONFIG[] =
    "data: {phantoms: {count: 12, size: 16, seed: 1}, split: {fractions: [0.5, 0.25, 0.25], seed: 0}}\n"
    "grid:\n"
    "  model: [resnet34]\n"
    "  epochs: [2, 3]\n"
    "  batch_size: [8]\n"
    "  clr:\n"
    "    - {mode: triangular, base_lr: 1.0e-4, max_lr: 1.0e-3, step_size: 2}\n"
    "    - {mode: constant, base_lr: 0.01}\n";

typedef struct {
    char rel[64];
    EditFileKind kind;
    uint8_t *data;  // the pristine bytes
    size_t len;
} PristineFile;

static char g_tmp[256], g_work[300];
static PristineFile g_files[MAX_FILES];
static size_t g_n_files;
static FILE *g_null;
static volatile double g_sink;  // keeps the reads of the records from being optimised away

// The trials as the resume path sees them: id, budget, checkpoint.
typedef struct {
    char id[TRIAL_ID_HEX + 1];
    size_t budget;
} TrialInfo;
static TrialInfo g_trials[8];
static size_t g_n_trials;
static CheckpointRef g_ckpts[4];  // one per run
static size_t g_n_ckpts;

// The names edits aim at (EditSpace) and their storage.
static EditSpace g_space;
static const char *g_file_names[MAX_FILES];
static EditFileKind g_file_kinds[MAX_FILES];
static const char *g_objects[3][MAX_NAMES], *g_attrs[3][MAX_NAMES], *g_strings[MAX_NAMES];
static char g_names[4 * MAX_NAMES][160];
static size_t g_n_names;

static void die(const char *what, const char *msg) {
    fprintf(stderr, "fuzz_results: %s: %s\n", what, msg);
    abort();
}

static const char *keep_name(const char *fmt, const char *a, const char *b) {
    if (g_n_names == sizeof g_names / sizeof g_names[0]) die("names", "too many");
    snprintf(g_names[g_n_names], sizeof g_names[0], fmt, a, b);
    return g_names[g_n_names++];
}

static void add_name(const char **list, size_t *n, const char *name) {
    if (*n == MAX_NAMES) die("names", "too many");
    list[(*n)++] = name;
}

static void make_dirs(const char *base) {
    CtError err = {{0}};
    char *t = ct_asprintf("%s/trials", base), *c = ct_asprintf("%s/checkpoints", base);
    if (ct_mkdirs(t, &err) || ct_mkdirs(c, &err)) die("mkdir", err.msg);
    free(t);
    free(c);
}

// ---- the pristine directory ----

static void fill_dataset(DataSet *ds, const char *root) {
    memset(ds, 0, sizeof *ds);
    ds->root = ct_strdup(root);
    ds->n = N_ITEMS;
    ds->items = ct_calloc(N_ITEMS, sizeof *ds->items);
    for (size_t i = 0; i < N_ITEMS; i++) {
        DataItem *it = &ds->items[i];
        it->label = (int)(i % 2);
        it->split = i < 6 ? SPLIT_TRAIN : i < 9 ? SPLIT_VAL : SPLIT_TEST;
        it->rel = ct_asprintf("%s/img%02zu.png", it->label ? "CT_COVID" : "CT_NonCOVID", i);
        it->path = ct_asprintf("%s/%s", root, it->rel);
        it->bytes = 100 + i;
        ds->count[it->split][it->label != 0]++;
    }
    memset(ds->fingerprint, 'a', 64);
    ds->skipped = ct_calloc(1, sizeof *ds->skipped);
    ds->skipped[0] = ct_strdup("CT_COVID/bad.png: not an image");
    ds->n_skipped = 1;
}

// Records one trial's first `epochs` epochs.
static void fill_epochs(TrialRecord *r, size_t epochs) {
    for (size_t e = 1; e <= epochs; e++) {
        EpochRecord er = {.epoch = e, .lr = 1e-3 / (double)e, .train_loss = 0.7 / (double)e, .train_acc = 0.5,
                          .val_loss = 0.6, .val_acc = 0.4 + 0.1 * (double)e, .val_auc = 0.7, .seconds = 1.5};
        double lr[IPE];
        float prob[N_VAL], tprob[N_TEST];
        for (size_t i = 0; i < IPE; i++) lr[i] = 1e-4 * (double)(e * IPE + i);
        for (size_t i = 0; i < N_VAL; i++) prob[i] = 0.25f * (float)(i + e) - 0.1f;
        for (size_t i = 0; i < N_TEST; i++) tprob[i] = 0.3f * (float)i;
        trial_record_epoch(r, &er, lr, IPE, prob, tprob);
    }
}

static void write_pristine(const char *dir) {
    make_dirs(dir);
    CtError err = {{0}};
    SweepConfig cfg;
    char *name = ct_asprintf("%s/config.yaml", dir);
    if (config_parse(&cfg, name, CONFIG, strlen(CONFIG), &err)) die("config", err.msg);
    free(name);
    DataSet ds;
    char *root = ct_asprintf("%s/phantoms", dir);
    fill_dataset(&ds, root);
    free(root);
    Grid grid;
    if (grid_build(&grid, &cfg, ds.fingerprint, 6, &err)) die("grid", err.msg);
    if (grid.n_trials != 4 || grid.n_runs != 2) die("grid", "expected 4 trials in 2 runs");
    int64_t val_index[N_VAL] = {6, 7, 8}, test_index[N_TEST] = {9, 10, 11};
    TrialRecord rec[4];
    // Run 0: trial 0 done, trial 1 running from a checkpoint at epoch 2.
    // Run 1: trial 2 failed, trial 3 pending from a checkpoint at epoch 1.
    g_n_ckpts = grid.n_runs;
    for (size_t r = 0; r < grid.n_runs; r++) {
        CheckpointRef *ck = &g_ckpts[r];
        ck->epoch = r == 0 ? 2 : 1;
        ck->iteration = ck->epoch * IPE;
        snprintf(ck->file, sizeof ck->file, "checkpoints/%s.h5", grid.trials[grid.runs[r].trials[0]].id);
        uint8_t state[100];
        for (size_t i = 0; i < sizeof state; i++) state[i] = (uint8_t)(i * 7 + r);
        char *path = ct_asprintf("%s/%s", dir, ck->file);
        if (checkpoint_write(path, ck->epoch, ck->iteration, state, sizeof state, &err)) die(path, err.msg);
        free(path);
    }
    g_n_trials = grid.n_trials;
    for (size_t t = 0; t < grid.n_trials; t++) {
        const GridTrial *gt = &grid.trials[t];
        snprintf(g_trials[t].id, sizeof g_trials[t].id, "%s", gt->id);
        g_trials[t].budget = gt->epochs;
        TrialRecord *r = &rec[t];
        trial_record_init(r, gt->epochs, N_VAL, N_TEST);
        snprintf(r->host, sizeof r->host, "node1");
        snprintf(r->device, sizeof r->device, "cpu");
        r->rank = 1;
        const CheckpointRef *ck = NULL;
        if (t == 0) {
            fill_epochs(r, gt->epochs);
            r->status = TRIAL_DONE;
            const uint8_t labels[N_TEST] = {0, 1, 1};
            trial_record_select(r, labels);  // selected epoch, test_acc and test_auc there
        } else if (t == 1) {
            fill_epochs(r, 2);
            r->status = TRIAL_RUNNING;
            ck = &g_ckpts[gt->run];
        } else if (t == 2) {
            fill_epochs(r, 1);
            r->status = TRIAL_FAILED;
            snprintf(r->error, sizeof r->error, "loss is NaN at epoch 2");
        } else {
            fill_epochs(r, 1);
            r->status = TRIAL_PENDING;
            ck = &g_ckpts[gt->run];
        }
        char *path = ct_asprintf("%s/trials/%s.h5", dir, gt->id);
        if (trial_file_write(path, gt, r, val_index, test_index, ck, &err)) die(path, err.msg);
        free(path);
    }
    ManifestView view = {.cfg = &cfg, .ds = &ds, .grid = &grid, .records = rec,
                         .created_utc = "2026-01-01T00:00:00Z", .state = "running"};
    if (manifest_write(dir, &view, &err)) die("manifest", err.msg);
    for (size_t t = 0; t < grid.n_trials; t++) trial_record_free(&rec[t]);
    grid_free(&grid);
    dataset_free(&ds);
    config_free(&cfg);
}

static void load_file(const char *dir, const char *rel, EditFileKind kind) {
    if (g_n_files == MAX_FILES) die("files", "too many");
    PristineFile *p = &g_files[g_n_files++];
    snprintf(p->rel, sizeof p->rel, "%s", rel);
    p->kind = kind;
    char *path = ct_asprintf("%s/%s", dir, rel);
    CtError err = {{0}};
    if (ct_read_file(path, &p->data, &p->len, (size_t)1 << 24, &err)) die("read", err.msg);
    free(path);
}

// Objects and attributes of the schema (hdf5_schema/schema.txt, embedded),
// and what the schema does not list: the /trial/<id> links and the
// checkpoint files.
static void build_space(void) {
    for (const char *p = CTSWEEP_SCHEMA_TXT; *p;) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        char line[1024], file[16], kind[32], path[256];
        snprintf(line, sizeof line, "%.*s", (int)(len < sizeof line ? len : sizeof line - 1), p);
        p += len + (eol ? 1 : 0);
        if (line[0] == '#' || sscanf(line, "%15s %31s %255s", file, kind, path) != 3) continue;
        EditFileKind k = strcmp(file, "sweep") == 0 ? EDIT_FILE_SWEEP : EDIT_FILE_TRIAL;
        if (strstr(kind, "attr")) {
            // "/name" is an attribute of the root, "/group@name" of the group.
            const char *at = strchr(path, '@');
            const char *n = at ? keep_name("%s%s", path + 1, "") : keep_name("/@%s%s", path + 1, "");
            add_name(g_attrs[k], &g_space.n_attrs[k], n);
        } else {
            add_name(g_objects[k], &g_space.n_objects[k], keep_name("%s%s", path + 1, ""));
        }
    }
    for (size_t t = 0; t < g_n_trials; t++) {
        add_name(g_objects[EDIT_FILE_SWEEP], &g_space.n_objects[EDIT_FILE_SWEEP],
                 keep_name("trial/%s%s", g_trials[t].id, ""));
        add_name(g_strings, &g_space.n_strings, g_trials[t].id);
        add_name(g_strings, &g_space.n_strings, keep_name("trials/%s.h5%s", g_trials[t].id, ""));
    }
    for (size_t r = 0; r < g_n_ckpts; r++) add_name(g_strings, &g_space.n_strings, g_ckpts[r].file);
    add_name(g_objects[EDIT_FILE_CHECKPOINT], &g_space.n_objects[EDIT_FILE_CHECKPOINT], "state");
    add_name(g_attrs[EDIT_FILE_CHECKPOINT], &g_space.n_attrs[EDIT_FILE_CHECKPOINT], "/@epoch");
    add_name(g_attrs[EDIT_FILE_CHECKPOINT], &g_space.n_attrs[EDIT_FILE_CHECKPOINT], "/@iteration");
    for (int k = 0; k < 3; k++) {
        g_space.objects[k] = g_objects[k];
        g_space.attrs[k] = g_attrs[k];
    }
    g_space.strings = g_strings;
    for (size_t i = 0; i < g_n_files; i++) {
        g_file_names[i] = g_files[i].rel;
        g_file_kinds[i] = g_files[i].kind;
    }
    g_space.files = g_file_names;
    g_space.kinds = g_file_kinds;
    g_space.n_files = g_n_files;
    g_space.dir = g_work;
    const char *raw = getenv("CTSWEEP_FUZZ_RESULTS_RAW");
    g_space.raw = raw && raw[0] && strcmp(raw, "0") != 0;
    // CTSWEEP_FUZZ_VERBOSE=1: list the edits of each input (to read a finding).
    const char *verbose = getenv("CTSWEEP_FUZZ_VERBOSE");
    g_space.verbose = verbose && verbose[0] && strcmp(verbose, "0") != 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    setenv("HDF5_USE_FILE_LOCKING", "FALSE", 0);
    h5io_init();
    fuzz_tmp_make("fuzz_results", g_tmp, sizeof g_tmp);
    char *pristine = ct_asprintf("%s/pristine", g_tmp);
    snprintf(g_work, sizeof g_work, "%s/work", g_tmp);
    write_pristine(pristine);
    int n_files = 0;
    if (validate_outdir(pristine, stderr, &n_files) != 0 || n_files != 1 + (int)g_n_trials)
        die("validate", "the directory the writers made does not validate");
    load_file(pristine, "sweep.h5", EDIT_FILE_SWEEP);
    for (size_t t = 0; t < g_n_trials; t++) {
        char rel[64];
        snprintf(rel, sizeof rel, "trials/%s.h5", g_trials[t].id);
        load_file(pristine, rel, EDIT_FILE_TRIAL);
    }
    for (size_t r = 0; r < g_n_ckpts; r++) load_file(pristine, g_ckpts[r].file, EDIT_FILE_CHECKPOINT);
    free(pristine);
    build_space();
    g_null = fopen("/dev/null", "w");
    if (!g_null) die("/dev/null", "cannot open");
    fprintf(stderr, "fuzz_results: %zu files in %s%s\n", g_n_files, g_work,
            g_space.raw ? " (raw byte edits on)" : "");
    return 0;
}

// ---- one input ----

static void reset_work(void) {
    fuzz_tmp_remove_tree(g_work);
    make_dirs(g_work);
    for (size_t i = 0; i < g_n_files; i++) {
        char *path = ct_asprintf("%s/%s", g_work, g_files[i].rel);
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(g_files[i].data, 1, g_files[i].len, f) != g_files[i].len || fclose(f) != 0)
            die("write", path);
        free(path);
    }
}

// As master_resume reads one trial: its file, then the checkpoint it names.
static void resume_trial(const TrialInfo *t) {
    char *path = ct_asprintf("%s/trials/%s.h5", g_work, t->id);
    struct stat st;
    if (stat(path, &st) != 0) {
        free(path);
        return;
    }
    TrialRecord r;
    trial_record_init(&r, t->budget, N_VAL, N_TEST);
    CheckpointRef ck;
    CtError err = {{0}};
    if (trial_file_read(path, &r, &ck, &err) == 0) {
        if (r.epochs_done > r.budget || (unsigned)r.status > TRIAL_FAILED || r.best_epoch > r.epochs_done)
            abort();
        if (memchr(ck.file, 0, sizeof ck.file) == NULL) abort();
        // The stored records must be readable where resume reads them.
        double sum = 0;
        for (size_t e = 0; e < r.epochs_done; e++) sum += r.epochs[e].val_acc;
        for (size_t i = 0; i < r.epochs_done * r.iters_per_epoch; i++) sum += r.lr_trace[i];
        for (size_t i = 0; i < r.epochs_done * r.n_val; i++) sum += r.val_prob[i];
        if (r.status == TRIAL_DONE)
            for (size_t i = 0; i < r.n_test; i++) sum += r.test_prob[i];
        if (ck.file[0]) {
            char *cpath = ct_asprintf("%s/%s", g_work, ck.file);
            Buf b = {0};
            CtError cerr = {{0}};
            if (checkpoint_read(cpath, ck.epoch, ck.iteration, &b, &cerr) == 0 && b.n == 0) abort();
            buf_free(&b);
            free(cpath);
        }
        trial_record_truncate(&r, ck.epoch);
        g_sink = sum;
    } else if (!err.msg[0] || strchr(err.msg, '\n')) {
        abort();  // a refusal says why, on one line
    }
    trial_record_free(&r);
    free(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    reset_work();
    edit_apply(&g_space, data, size);
    // What the editing left open (nothing, unless HDF5 misbehaves), so that
    // what the readers leave open is told apart.
    ssize_t before = H5Fget_obj_count((hid_t)H5F_OBJ_ALL, H5F_OBJ_ALL);
    int n_files = 0;
    int problems = validate_outdir(g_work, g_null, &n_files);
    if (size == 0 && problems != 0) abort();  // the unedited directory validates
    for (size_t t = 0; t < g_n_trials; t++) resume_trial(&g_trials[t]);
    for (size_t r = 0; r < g_n_ckpts; r++) {
        char *path = ct_asprintf("%s/%s", g_work, g_ckpts[r].file);
        Buf b = {0};
        CtError err = {{0}};
        checkpoint_read(path, g_ckpts[r].epoch, g_ckpts[r].iteration, &b, &err);
        buf_free(&b);
        free(path);
    }
    // The readers close every HDF5 object they open.
    ssize_t open = H5Fget_obj_count((hid_t)H5F_OBJ_ALL, H5F_OBJ_ALL);
    if (open != before) {
        fprintf(stderr, "fuzz_results: %zd HDF5 objects left open by the readers:\n", open - before);
        hid_t ids[16];
        ssize_t n = H5Fget_obj_ids((hid_t)H5F_OBJ_ALL, H5F_OBJ_ALL, 16, ids);
        for (ssize_t i = 0; i < n; i++) {
            char name[512] = "";
            H5I_type_t type = H5Iget_type(ids[i]);
            if (type != H5I_FILE) H5Iget_name(ids[i], name, sizeof name);
            fprintf(stderr, "  %s %s\n", type == H5I_FILE ? "a file" : "object", name);
        }
        abort();
    }
    return 0;
}
