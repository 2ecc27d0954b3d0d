/*
 * dataset.c — building the data set index (class folders, split files or a
 * seeded stratified split) and its fingerprint.
 */
#include "data/dataset.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/folds.h"
#include "data/groups.h"
#include "util/rng.h"
#include "util/sha256.h"

static const char *SPLIT_NAMES[DATA_SPLITS] = {"train", "val", "test"};

const char *split_name(int split) { return split >= 0 && split < DATA_SPLITS ? SPLIT_NAMES[split] : "?"; }

void data_spec_default(DataSpec *spec, const char *root) {
    memset(spec, 0, sizeof *spec);
    snprintf(spec->root, sizeof spec->root, "%s", root ? root : "");
    snprintf(spec->classes[0].folder, sizeof spec->classes[0].folder, "CT_NonCOVID");
    spec->classes[0].label = 0;
    snprintf(spec->classes[1].folder, sizeof spec->classes[1].folder, "CT_COVID");
    spec->classes[1].label = 1;
    spec->n_classes = 2;
    spec->split = DATA_SPLIT_FRACTIONS;
    snprintf(spec->split_dir, sizeof spec->split_dir, "splits");
    spec->fractions[0] = 0.8;
    spec->fractions[1] = 0.1;
    spec->fractions[2] = 0.1;
}

int dataset_path_is_safe(const char *rel) {
    if (!rel || !rel[0] || rel[0] == '/') return 0;
    for (const unsigned char *p = (const unsigned char *)rel; *p; p++)
        if (*p < 0x20 || *p == 0x7f || *p == '\\') return 0;
    // No "." or ".." component.
    const char *s = rel;
    while (*s) {
        const char *e = strchr(s, '/');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len == 0 || (len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.')) return 0;
        s += len;
        if (*s == '/') s++;
    }
    return 1;
}

// ---- building the item list ----

typedef struct {
    DataItem *items;
    size_t n, cap;
} ItemList;

static void list_push(ItemList *l, const char *root, const char *rel, size_t cls, int label, int split,
                      uint64_t bytes) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        l->items = ct_realloc(l->items, l->cap * sizeof *l->items);
    }
    DataItem *it = &l->items[l->n++];
    it->rel = ct_strdup(rel);
    it->path = ct_asprintf("%s/%s", root, rel);
    it->label = label;
    it->split = split;
    it->bytes = bytes;
    memset(it->content, 0, sizeof it->content);
    it->cls = cls;
    it->group = NULL;
    it->fold = -1;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// Sorted names of the regular, non-hidden files in dir.
static int list_folder(const char *dir, char ***names, size_t *n, CtError *err) {
    DIR *d = opendir(dir);
    if (!d) return ct_errorf(err, "%s: cannot open class folder: %s", dir, strerror(errno));
    size_t cap = 0;
    *names = NULL;
    *n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char *p = ct_asprintf("%s/%s", dir, e->d_name);
        struct stat st;
        int regular = stat(p, &st) == 0 && S_ISREG(st.st_mode);
        free(p);
        if (!regular) continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 256;
            *names = ct_realloc(*names, cap * sizeof **names);
        }
        (*names)[(*n)++] = ct_strdup(e->d_name);
    }
    closedir(d);
    if (*n > 1) qsort(*names, *n, sizeof **names, cmp_str);  // an empty folder has no array at all
    return 0;
}

static void free_names(char **names, size_t n) {
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

static uint64_t file_bytes(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

// Reads one split file into names (without \r, blank lines dropped).
static int read_split_file(const char *path, char ***names, size_t *n, CtError *err) {
    uint8_t *data;
    size_t len;
    if (ct_read_file(path, &data, &len, (size_t)64 << 20, err)) return -1;
    size_t cap = 0, line = 0;
    *names = NULL;
    *n = 0;
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && data[j] != '\n') j++;
        line++;
        size_t end = j;
        while (end > i && (data[end - 1] == '\r' || data[end - 1] == ' ' || data[end - 1] == '\t')) end--;
        size_t start = i;
        while (start < end && (data[start] == ' ' || data[start] == '\t')) start++;
        if (end > start) {
            char *name = ct_malloc(end - start + 1);
            memcpy(name, data + start, end - start);
            name[end - start] = '\0';
            if (memchr(data + start, '\0', end - start) || !dataset_path_is_safe(name)) {
                ct_errorf(err, "%s:%zu: unsafe or invalid file name '%s'", path, line, name);
                free(name);
                free(data);
                free_names(*names, *n);
                *names = NULL;
                *n = 0;
                return -1;
            }
            if (*n == cap) {
                cap = cap ? 2 * cap : 256;
                *names = ct_realloc(*names, cap * sizeof **names);
            }
            (*names)[(*n)++] = name;
        }
        i = j + 1;
    }
    free(data);
    return 0;
}

static int index_from_split_files(ItemList *l, const DataSpec *spec, CtError *err) {
    for (size_t c = 0; c < spec->n_classes; c++) {
        const DataClass *cls = &spec->classes[c];
        char *dir = ct_asprintf("%s/%s", spec->root, cls->folder);
        char **present;
        size_t n_present;
        if (list_folder(dir, &present, &n_present, err)) {
            free(dir);
            return -1;
        }
        // Which split each present file was given; -1 = none yet.
        int *assigned = ct_malloc_array(n_present ? n_present : 1, sizeof *assigned);
        for (size_t i = 0; i < n_present; i++) assigned[i] = -1;
        int rc = 0;
        for (int s = 0; s < DATA_SPLITS && rc == 0; s++) {
            char *sf = ct_asprintf("%s/%s/%s%s.txt", spec->root, spec->split_dir, SPLIT_NAMES[s], cls->folder);
            char **names = NULL;
            size_t n = 0;
            rc = read_split_file(sf, &names, &n, err);
            for (size_t k = 0; k < n && rc == 0; k++) {
                char *key = names[k];
                char **hit = bsearch(&key, present, n_present, sizeof *present, cmp_str);
                if (!hit) {
                    rc = ct_errorf(err, "%s: '%s' is not a file in %s", sf, names[k], dir);
                    break;
                }
                size_t idx = (size_t)(hit - present);
                if (assigned[idx] >= 0) {
                    rc = ct_errorf(err, "%s: '%s' is listed in the %s split too", sf, names[k],
                                   SPLIT_NAMES[assigned[idx]]);
                    break;
                }
                assigned[idx] = s;
            }
            free_names(names, n);
            free(sf);
        }
        size_t unlisted = 0;
        for (size_t i = 0; i < n_present && rc == 0; i++) {
            if (assigned[i] < 0) {
                unlisted++;
                continue;
            }
            char *rel = ct_asprintf("%s/%s", cls->folder, present[i]);
            char *full = ct_asprintf("%s/%s", spec->root, rel);
            list_push(l, spec->root, rel, c, cls->label, assigned[i], file_bytes(full));
            free(full);
            free(rel);
        }
        if (rc == 0 && unlisted)
            ct_warn("%s: %zu file(s) are in no split file and are left out", dir, unlisted);
        free(assigned);
        free_names(present, n_present);
        free(dir);
        if (rc) return -1;
    }
    return 0;
}

static int index_from_fractions(ItemList *l, const DataSpec *spec, CtError *err) {
    double sum = spec->fractions[0] + spec->fractions[1] + spec->fractions[2];
    for (int s = 0; s < DATA_SPLITS; s++)
        if (!(spec->fractions[s] >= 0) || !(spec->fractions[s] <= 1))
            return ct_errorf(err, "split fraction %s = %g is outside [0, 1]", SPLIT_NAMES[s], spec->fractions[s]);
    if (fabs(sum - 1.0) > 1e-6) return ct_errorf(err, "split fractions sum to %g, not 1", sum);
    for (size_t c = 0; c < spec->n_classes; c++) {
        const DataClass *cls = &spec->classes[c];
        char *dir = ct_asprintf("%s/%s", spec->root, cls->folder);
        char **names;
        size_t n;
        if (list_folder(dir, &names, &n, err)) {
            free(dir);
            return -1;
        }
        // Seeded permutation per class (Fisher–Yates from the counter RNG),
        // then the first share is train, the next val, the rest test.
        size_t *perm = ct_malloc_array(n ? n : 1, sizeof *perm);
        for (size_t i = 0; i < n; i++) perm[i] = i;
        RngStream rs;
        rng_stream_init(&rs, spec->seed, RNG_SPLIT, (uint32_t)c, 0, 0);
        for (size_t i = n; i > 1; i--) {
            size_t j = rng_below(&rs, (uint32_t)i);
            size_t t = perm[i - 1];
            perm[i - 1] = perm[j];
            perm[j] = t;
        }
        size_t n_train = (size_t)llround(spec->fractions[0] * (double)n);
        size_t n_val = (size_t)llround(spec->fractions[1] * (double)n);
        if (n_train + n_val > n) n_val = n - n_train;
        int *split = ct_malloc_array(n ? n : 1, sizeof *split);
        for (size_t r = 0; r < n; r++) split[perm[r]] = r < n_train ? SPLIT_TRAIN : r < n_train + n_val ? SPLIT_VAL : SPLIT_TEST;
        for (size_t i = 0; i < n; i++) {
            char *rel = ct_asprintf("%s/%s", cls->folder, names[i]);
            char *full = ct_asprintf("%s/%s", spec->root, rel);
            list_push(l, spec->root, rel, c, cls->label, split[i], file_bytes(full));
            free(full);
            free(rel);
        }
        free(split);
        free(perm);
        free_names(names, n);
        free(dir);
    }
    return 0;
}

int dataset_open(DataSet *ds, const DataSpec *spec, CtError *err) {
    memset(ds, 0, sizeof *ds);
    if (!spec->root[0]) return ct_errorf(err, "data root is empty");
    if (spec->n_classes < 2) return ct_errorf(err, "%s: at least two classes are needed", spec->root);
    for (size_t c = 0; c < spec->n_classes; c++) {
        if (!dataset_path_is_safe(spec->classes[c].folder))
            return ct_errorf(err, "class folder '%s' must be a relative path inside the data root",
                             spec->classes[c].folder);
        for (size_t d = 0; d < c; d++)
            if (strcmp(spec->classes[c].folder, spec->classes[d].folder) == 0)
                return ct_errorf(err, "class folder '%s' is given twice", spec->classes[c].folder);
    }
    if (spec->split == DATA_SPLIT_FILES && !dataset_path_is_safe(spec->split_dir))
        return ct_errorf(err, "split folder '%s' must be a relative path inside the data root", spec->split_dir);
    ItemList l = {0};
    int rc = spec->split == DATA_SPLIT_FILES ? index_from_split_files(&l, spec, err)
                                             : index_from_fractions(&l, spec, err);
    ds->root = ct_strdup(spec->root);
    ds->items = l.items;
    ds->n = l.n;
    if (rc) {
        dataset_free(ds);
        return -1;
    }
    if (ds->n == 0) {
        dataset_free(ds);
        return ct_errorf(err, "%s: no images found in the class folders", spec->root);
    }
    // Groups (a grouped fraction split, or the straddle check of split
    // files), then the folds of k-fold cross-validation.
    if (groups_apply(ds, spec, err) || folds_assign(ds, spec, err)) {
        dataset_free(ds);
        return -1;
    }
    for (size_t i = 0; i < ds->n; i++) ds->count[ds->items[i].split][ds->items[i].label != 0]++;
    return 0;
}

void dataset_skip(DataSet *ds, size_t i, const char *reason) {
    if (i >= ds->n) return;
    DataItem it = ds->items[i];
    ds->skipped = ct_realloc(ds->skipped, (ds->n_skipped + 1) * sizeof *ds->skipped);
    ds->skipped[ds->n_skipped++] = ct_asprintf("%s: %s", it.rel, reason);
    ds->count[it.split][it.label != 0]--;
    free(it.path);
    free(it.rel);
    free(it.group);
    memmove(ds->items + i, ds->items + i + 1, (ds->n - i - 1) * sizeof *ds->items);
    ds->n--;
}

int dataset_fingerprint(DataSet *ds, CtError *err) {
    long bad = -1;
    ds->hashed = 0;
    CtError first = {{0}};
#pragma omp parallel for schedule(dynamic, 4)
    for (size_t i = 0; i < ds->n; i++) {
        uint8_t *data;
        size_t len;
        CtError e;
        if (ct_read_file(ds->items[i].path, &data, &len, SIZE_MAX, &e)) {
#pragma omp critical
            if (bad < 0 || (long)i < bad) {
                bad = (long)i;
                first = e;
            }
            continue;
        }
        sha256_buffer(data, len, ds->items[i].content);
        free(data);
    }
    if (bad >= 0) {
        *err = first;
        return -1;
    }
    Sha256 s;
    sha256_init(&s);
    sha256_update(&s, "ctsweep-dataset-v1", 18);
    for (size_t i = 0; i < ds->n; i++) {
        const DataItem *it = &ds->items[i];
        char meta[64];
        int m = snprintf(meta, sizeof meta, "|%d|%d|%llu|", it->label, it->split, (unsigned long long)it->bytes);
        // The folds change every k-fold result; without k-fold the
        // fingerprint (and every trial id) is what it always was.
        if (ds->kfold) m += snprintf(meta + m, sizeof meta - (size_t)m, "fold=%d|", it->fold);
        sha256_update(&s, it->rel, strlen(it->rel) + 1);
        sha256_update(&s, meta, (size_t)m);
        sha256_update(&s, it->content, 32);
    }
    uint8_t d[32];
    sha256_final(&s, d);
    sha256_hex(d, 32, ds->fingerprint);
    ds->hashed = 1;
    return 0;
}

void dataset_free(DataSet *ds) {
    for (size_t i = 0; i < ds->n; i++) {
        free(ds->items[i].path);
        free(ds->items[i].rel);
        free(ds->items[i].group);
    }
    free(ds->items);
    for (size_t i = 0; i < ds->n_skipped; i++) free(ds->skipped[i]);
    free(ds->skipped);
    free(ds->root);
    memset(ds, 0, sizeof *ds);
}
