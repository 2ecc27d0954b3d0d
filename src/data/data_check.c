/*
 * data_check.c — the checks that a data set can judge a classifier (every
 * class in every split and fold, no identical files across splits), and the
 * start-up table of images per class and split.
 */
#include "data/data_check.h"

#include <stdlib.h>
#include <string.h>

int duplicate_policy_parse(const char *s, DuplicatePolicy *out) {
    if (strcmp(s, "error") == 0) *out = DUPLICATE_ERROR;
    else if (strcmp(s, "warn") == 0) *out = DUPLICATE_WARN;
    else if (strcmp(s, "ignore") == 0) *out = DUPLICATE_IGNORE;
    else return -1;
    return 0;
}

// ---- counting ----

static void check_input(const DataCheckInput *in) {
    if (in->n_classes < 1 || in->n_classes > DATA_MAX_CLASSES) fatal("data check: %zu classes", in->n_classes);
    for (size_t i = 0; i < in->n; i++) {
        if (in->cls[i] < 0 || (size_t)in->cls[i] >= in->n_classes)
            fatal("data check: image %zu has class %d", i, in->cls[i]);
        if (in->split[i] < 0 || in->split[i] >= DATA_SPLITS)
            fatal("data check: image %zu has split %d", i, in->split[i]);
        if (in->fold && (in->fold[i] < -1 || (in->fold[i] >= 0 && (size_t)in->fold[i] >= in->n_folds)))
            fatal("data check: image %zu has fold %d of %zu", i, in->fold[i], in->n_folds);
    }
}

void data_check_count(const DataCheckInput *in, long fold, size_t (*count)[DATA_SPLITS]) {
    memset(count, 0, in->n_classes * sizeof *count);
    for (size_t i = 0; i < in->n; i++) {
        int s = in->split[i];
        if (fold >= 0 && s != SPLIT_TEST) {
            if (in->fold[i] < 0) continue;  // in no fold: in none of this fold's sets
            s = in->fold[i] == fold ? SPLIT_VAL : SPLIT_TRAIN;
        }
        count[in->cls[i]][s]++;
    }
}

// The views to check and print: the plain split, or each fold.
static size_t n_views(const DataCheckInput *in) { return in->fold ? in->n_folds : 1; }
static long view_fold(const DataCheckInput *in, size_t v) { return in->fold ? (long)v : -1; }

// ---- every class in every split ----

int data_check_classes(const DataCheckInput *in, DataCheckReport *rep, CtError *err) {
    check_input(in);
    if (in->fold && in->n_folds < 2) return ct_errorf(err, "data: k-fold needs at least 2 folds, got %zu", in->n_folds);
    size_t(*count)[DATA_SPLITS] = ct_calloc(in->n_classes, sizeof *count);
    // Val and test are named first: an empty one is what makes the reported
    // numbers meaningless without anything failing.
    static const int order[DATA_SPLITS] = {SPLIT_VAL, SPLIT_TEST, SPLIT_TRAIN};
    char few[768] = "";
    size_t nf = 0, n_few = 0;
    int rc = 0;
    for (size_t v = 0; v < n_views(in) && rc == 0; v++) {
        long f = view_fold(in, v);
        data_check_count(in, f, count);
        for (size_t c = 0; c < in->n_classes && rc == 0; c++) {
            for (int k = 0; k < DATA_SPLITS; k++) {
                int s = order[k];
                if (count[c][s]) continue;
                char of[32] = "", fold_of[32] = "";
                if (f >= 0 && s != SPLIT_TEST) snprintf(of, sizeof of, " of fold %ld", f);
                if (f >= 0) snprintf(fold_of, sizeof fold_of, "fold %ld: ", f);
                rc = ct_errorf(err, "data: class %s has 0 images in %s%s (%strain %zu, val %zu, test %zu); %s",
                               in->class_name[c], split_name(s), of, fold_of, count[c][SPLIT_TRAIN],
                               count[c][SPLIT_VAL], count[c][SPLIT_TEST],
                               s == SPLIT_TRAIN ? "the classifier would never see it"
                                                : "AUC and accuracy would be meaningless");
                break;
            }
        }
    }
    // Small evaluation sets: val of each view, test once (the same in every fold).
    size_t nv = n_views(in);
    size_t *got = ct_calloc(in->n_classes * (nv + 1), sizeof *got);  // (n_classes, views + test)
    for (size_t v = 0; v < nv && rc == 0; v++) {
        data_check_count(in, view_fold(in, v), count);
        for (size_t c = 0; c < in->n_classes; c++) {
            got[c * (nv + 1) + v] = count[c][SPLIT_VAL];
            got[c * (nv + 1) + nv] = count[c][SPLIT_TEST];
        }
    }
    for (size_t c = 0; c < in->n_classes && rc == 0; c++) {
        size_t cell = 0;
        for (size_t v = 0; v <= nv; v++) {
            size_t g = got[c * (nv + 1) + v];
            if (g >= DATA_CHECK_FEW) continue;
            n_few++;
            char where[48];
            if (v == nv) snprintf(where, sizeof where, "test");
            else if (in->fold) snprintf(where, sizeof where, "val (fold %zu)", v);
            else snprintf(where, sizeof where, "val");
            if (nf < sizeof few) {
                int m = cell ? snprintf(few + nf, sizeof few - nf, ", %s %zu", where, g)
                             : snprintf(few + nf, sizeof few - nf, "%s%s %s %zu", nf ? "; " : "", in->class_name[c],
                                        where, g);
                nf += m > 0 ? (size_t)m : 0;
            }
            cell++;
        }
    }
    free(got);
    free(count);
    if (rc) return -1;
    if (rep) rep->few_cells = n_few;
    if (n_few) {
        if (nf >= sizeof few) strcpy(few + sizeof few - 5, " ...");
        ct_warn("data: fewer than %d images of a class in val or test: %s; intervals will be wide", DATA_CHECK_FEW,
                few);
    }
    return 0;
}

// ---- identical files ----

typedef struct {
    const uint8_t *h;
    size_t i;
} HashRef;

static int cmp_hash(const void *a, const void *b) {
    const HashRef *x = a, *y = b;
    int c = memcmp(x->h, y->h, 32);
    return c ? c : (x->i > y->i) - (x->i < y->i);
}

// Where an image is used: its split, or with k-fold DATA_SPLITS + its fold
// for a train/val image in a fold. Identical files in two parts leak.
static long part_of(const DataCheckInput *in, size_t i) {
    if (in->fold && in->split[i] != SPLIT_TEST && in->fold[i] >= 0) return DATA_SPLITS + in->fold[i];
    return in->split[i];
}

static const char *part_name(const DataCheckInput *in, size_t i, char *buf, size_t cap) {
    long p = part_of(in, i);
    if (p >= DATA_SPLITS) snprintf(buf, cap, "fold %ld", p - DATA_SPLITS);
    else snprintf(buf, cap, "%s", split_name((int)p));
    return buf;
}

int data_check_duplicates(const DataCheckInput *in, DuplicatePolicy policy, DataCheckReport *rep, CtError *err) {
    check_input(in);
    DataCheckReport r = {0};
    if (rep) {
        rep->cross_sets = 0;
        memset(rep->within, 0, sizeof rep->within);
    }
    if (!in->content || policy == DUPLICATE_IGNORE || in->n < 2) return 0;
    HashRef *refs = ct_malloc_array(in->n, sizeof *refs);
    for (size_t i = 0; i < in->n; i++) refs[i] = (HashRef){in->content[i], i};
    qsort(refs, in->n, sizeof *refs, cmp_hash);
    // The reported pairs: the ones whose first image comes first in the data set.
    size_t cross_a = SIZE_MAX, cross_b = 0, within_a = SIZE_MAX, within_b = 0;
    for (size_t a = 0; a < in->n;) {
        size_t b = a + 1;
        while (b < in->n && memcmp(refs[a].h, refs[b].h, 32) == 0) b++;
        // refs[a..b) hold one content, in data-set order.
        int crosses = 0;
        for (size_t j = a + 1; j < b; j++) {
            size_t ij = refs[j].i;
            size_t same = SIZE_MAX;
            for (size_t k = a; k < j && same == SIZE_MAX; k++)
                if (part_of(in, refs[k].i) == part_of(in, ij)) same = refs[k].i;
            if (same != SIZE_MAX) {
                r.within[in->split[ij]]++;
                if (same < within_a) within_a = same, within_b = ij;
            } else if (!crosses) {
                crosses = 1;
                r.cross_sets++;
                if (refs[a].i < cross_a) cross_a = refs[a].i, cross_b = ij;
            }
        }
        a = b;
    }
    free(refs);
    if (rep) {
        rep->cross_sets = r.cross_sets;
        memcpy(rep->within, r.within, sizeof r.within);
    }
    if (r.cross_sets) {
        char pa[32], pb[32], labels[300] = "";
        if (in->cls[cross_a] != in->cls[cross_b])
            snprintf(labels, sizeof labels, " and different classes (%s, %s)", in->class_name[in->cls[cross_a]],
                     in->class_name[in->cls[cross_b]]);
        const char *sets = r.cross_sets == 1 ? "set" : "sets";
        if (policy == DUPLICATE_ERROR)
            return ct_errorf(err, "data: %s (%s) and %s (%s) have identical content%s: leakage between splits "
                             "(%zu %s of identical files across splits); set data.on_duplicate: warn to run anyway",
                             in->name[cross_a], part_name(in, cross_a, pa, sizeof pa), in->name[cross_b],
                             part_name(in, cross_b, pb, sizeof pb), labels, r.cross_sets, sets);
        ct_warn("data: %s (%s) and %s (%s) have identical content%s: leakage between splits (%zu %s of identical "
                "files across splits; data.on_duplicate: warn)",
                in->name[cross_a], part_name(in, cross_a, pa, sizeof pa), in->name[cross_b],
                part_name(in, cross_b, pb, sizeof pb), labels, r.cross_sets, sets);
    }
    size_t n_within = r.within[0] + r.within[1] + r.within[2];
    if (n_within) {
        char pa[32];
        ct_warn("data: %zu image%s identical to another of the same split (train %zu, val %zu, test %zu), e.g. %s "
                "and %s (%s): each copy counts again",
                n_within, n_within == 1 ? " is" : "s are", r.within[SPLIT_TRAIN], r.within[SPLIT_VAL],
                r.within[SPLIT_TEST], in->name[within_a], in->name[within_b], part_name(in, within_a, pa, sizeof pa));
    }
    return 0;
}

int data_check_run(const DataCheckInput *in, DuplicatePolicy policy, DataCheckReport *rep, CtError *err) {
    DataCheckReport r = {0};
    int rc = data_check_classes(in, &r, err) || data_check_duplicates(in, policy, &r, err) ? -1 : 0;
    if (rep) *rep = r;
    return rc;
}

// ---- the table ----

void data_check_print_table(FILE *f, const DataCheckInput *in) {
    check_input(in);
    int w = 5;  // "class", "total"
    for (size_t c = 0; c < in->n_classes; c++) {
        int len = (int)strlen(in->class_name[c]);
        if (len > w) w = len > 40 ? 40 : len;
    }
    size_t(*count)[DATA_SPLITS] = ct_calloc(in->n_classes, sizeof *count);
    if (in->fold)
        fprintf(f, "data: images per class, fold and split (a fold's val is its own images, its train the other "
                   "folds')\n  fold  %-*s  %7s %7s %7s\n", w, "class", "train", "val", "test");
    else
        fprintf(f, "data: images per class and split\n  %-*s  %7s %7s %7s\n", w, "class", "train", "val", "test");
    for (size_t v = 0; v < n_views(in); v++) {
        long fo = view_fold(in, v);
        data_check_count(in, fo, count);
        size_t total[DATA_SPLITS] = {0};
        char fold_col[16] = "";
        if (in->fold) snprintf(fold_col, sizeof fold_col, "%-4ld  ", fo);
        for (size_t c = 0; c < in->n_classes; c++) {
            fprintf(f, "  %s%-*.*s  %7zu %7zu %7zu\n", fold_col, w, w, in->class_name[c], count[c][SPLIT_TRAIN],
                    count[c][SPLIT_VAL], count[c][SPLIT_TEST]);
            for (int s = 0; s < DATA_SPLITS; s++) total[s] += count[c][s];
        }
        fprintf(f, "  %s%-*s  %7zu %7zu %7zu\n", fold_col, w, "total", total[SPLIT_TRAIN], total[SPLIT_VAL],
                total[SPLIT_TEST]);
    }
    free(count);
}

// ---- a DataSet ----

typedef struct {
    DataCheckInput in;
    int *cls, *split, *fold;
    const char **name;
    uint8_t (*content)[32];
    char *class_name[2];
    const char *names[2];
} DataView;

static void view_init(DataView *v, const DataSet *ds, const DataSpec *spec) {
    memset(v, 0, sizeof *v);
    size_t n = ds->n ? ds->n : 1;
    v->cls = ct_malloc_array(n, sizeof *v->cls);
    v->split = ct_malloc_array(n, sizeof *v->split);
    v->name = ct_malloc_array(n, sizeof *v->name);
    v->content = ct_malloc_array(n, sizeof *v->content);
    v->fold = ds->kfold ? ct_malloc_array(n, sizeof *v->fold) : NULL;
    for (size_t i = 0; i < ds->n; i++) {
        v->cls[i] = ds->items[i].label != 0;
        v->split[i] = ds->items[i].split;
        if (v->fold) v->fold[i] = ds->items[i].fold;
        v->name[i] = ds->items[i].rel;
        memcpy(v->content[i], ds->items[i].content, 32);
    }
    // A label's name is its folders: "CT_COVID", or "A+B" when two share it.
    for (int l = 0; l < 2; l++) {
        char *s = ct_strdup("");
        for (size_t c = 0; c < spec->n_classes; c++) {
            if ((spec->classes[c].label != 0) != l) continue;
            char *t = ct_asprintf("%s%s%s", s, s[0] ? "+" : "", spec->classes[c].folder);
            free(s);
            s = t;
        }
        v->class_name[l] = s[0] ? s : (free(s), ct_strdup(l ? "positive" : "negative"));
        v->names[l] = v->class_name[l];
    }
    v->in = (DataCheckInput){.n = ds->n,
                             .cls = v->cls,
                             .split = v->split,
                             .fold = v->fold,
                             .n_folds = ds->kfold,
                             .content = ds->hashed ? (const uint8_t(*)[32])v->content : NULL,
                             .name = v->name,
                             .n_classes = 2,
                             .class_name = v->names};
}

static void view_free(DataView *v) {
    free(v->fold);
    free(v->cls);
    free(v->split);
    free(v->name);
    free(v->content);
    free(v->class_name[0]);
    free(v->class_name[1]);
}

// A class folder that holds nothing, where its label has other folders (the
// label check speaks for a lone folder).
static int check_folders(const DataSet *ds, const DataSpec *spec, CtError *err) {
    for (size_t c = 0; c < spec->n_classes; c++) {
        const char *folder = spec->classes[c].folder;
        size_t len = strlen(folder), found = 0;
        for (size_t i = 0; i < ds->n && !found; i++) {
            const char *rel = ds->items[i].rel;
            found = strncmp(rel, folder, len) == 0 && rel[len] == '/' && !strchr(rel + len + 1, '/');
        }
        if (!found)
            return ct_errorf(err, "data: class folder %s has 0 images (train 0, val 0, test 0); fill it or remove it "
                             "from data.classes", folder);
    }
    return 0;
}

int data_check_dataset(const DataSet *ds, const DataSpec *spec, DuplicatePolicy policy, DataCheckReport *rep,
                       CtError *err) {
    if (!ds->hashed) fatal("data_check_dataset before dataset_fingerprint");
    DataView v;
    view_init(&v, ds, spec);
    DataCheckReport r = {0};
    int rc = data_check_classes(&v.in, &r, err) || check_folders(ds, spec, err) ||
                     data_check_duplicates(&v.in, policy, &r, err)
                 ? -1
                 : 0;
    view_free(&v);
    if (rep) *rep = r;
    return rc;
}

void data_check_print_dataset(FILE *f, const DataSet *ds, const DataSpec *spec) {
    DataView v;
    view_init(&v, ds, spec);
    data_check_print_table(f, &v.in);
    view_free(&v);
}
