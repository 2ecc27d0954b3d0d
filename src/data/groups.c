/*
 * groups.c — group ids from a pattern or a CSV file, the grouped fraction
 * split, and the straddle check of split files (groups.h).
 */
#include "data/groups.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/folds.h"

// ---- pattern ----

int groups_pattern_check(const char *pattern, CtError *err) {
    regex_t re;
    int rc = regcomp(&re, pattern, REG_EXTENDED);
    if (rc) {
        char why[256];
        regerror(rc, &re, why, sizeof why);
        return ct_errorf(err, "'%s' is not an extended regular expression: %s", pattern, why);
    }
    size_t nsub = re.re_nsub;
    regfree(&re);
    if (nsub < 1) return ct_errorf(err, "'%s' has no capture group: put the group id in ( )", pattern);
    return 0;
}

static char *match_compiled(const regex_t *re, const char *rel) {
    regmatch_t m[2];
    if (regexec(re, rel, 2, m, 0) != 0 || m[1].rm_so < 0 || m[1].rm_eo <= m[1].rm_so) return NULL;
    size_t n = (size_t)(m[1].rm_eo - m[1].rm_so);
    char *g = ct_malloc(n + 1);
    memcpy(g, rel + m[1].rm_so, n);
    g[n] = '\0';
    return g;
}

char *groups_match(const char *pattern, const char *rel) {
    regex_t re;
    if (regcomp(&re, pattern, REG_EXTENDED)) return NULL;
    char *g = match_compiled(&re, rel);
    regfree(&re);
    return g;
}

static int groups_from_pattern(DataSet *ds, const DataSpec *spec, CtError *err) {
    if (groups_pattern_check(spec->group_pattern, err)) return ct_error_prefix(err, "data.groups.pattern");
    regex_t re;
    regcomp(&re, spec->group_pattern, REG_EXTENDED);
    int rc = 0;
    for (size_t i = 0; i < ds->n && rc == 0; i++) {
        ds->items[i].group = match_compiled(&re, ds->items[i].rel);
        if (!ds->items[i].group)
            rc = ct_errorf(err, "data.groups.pattern '%s' does not match %s (or its first capture group is empty)",
                           spec->group_pattern, ds->items[i].rel);
    }
    regfree(&re);
    return rc;
}

// ---- CSV ----

typedef struct {
    char *path, *group;
    size_t line;
} CsvRow;

static int cmp_row(const void *a, const void *b) { return strcmp(((const CsvRow *)a)->path, ((const CsvRow *)b)->path); }

// One field at *p (plain, or double-quoted with "" for a quote), up to a
// comma or the end of the line. NULL on a broken quote.
static char *csv_field(const char **p, const char *end) {
    const char *s = *p;
    char *out = ct_malloc((size_t)(end - s) + 1);
    size_t n = 0;
    if (s < end && *s == '"') {
        s++;
        for (;;) {
            if (s >= end) {
                free(out);
                return NULL;
            }
            if (*s == '"') {
                if (s + 1 < end && s[1] == '"') {
                    out[n++] = '"';
                    s += 2;
                    continue;
                }
                s++;
                break;
            }
            out[n++] = *s++;
        }
        if (s < end && *s != ',') {
            free(out);
            return NULL;
        }
    } else {
        while (s < end && *s != ',') out[n++] = *s++;
        while (n > 0 && (out[n - 1] == ' ' || out[n - 1] == '\t')) n--;
    }
    out[n] = '\0';
    *p = s;
    return out;
}

static void free_rows(CsvRow *rows, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(rows[i].path);
        free(rows[i].group);
    }
    free(rows);
}

// An optional first row naming the columns.
static int line_is_header(const char *path, const char *group) {
    return strcmp(path, "path") == 0 && strcmp(group, "group") == 0;
}

static int read_csv(const char *file, CsvRow **out, size_t *n_out, CtError *err) {
    uint8_t *data;
    size_t len;
    if (ct_read_file(file, &data, &len, (size_t)256 << 20, err)) return ct_error_prefix(err, "data.groups.file");
    CsvRow *rows = NULL;
    size_t n = 0, cap = 0, line = 0;
    int rc = 0;
    for (size_t i = 0; i < len && rc == 0;) {
        size_t j = i;
        while (j < len && data[j] != '\n') j++;
        line++;
        const char *s = (const char *)data + i, *end = (const char *)data + j;
        i = j + 1;
        while (end > s && (end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t')) end--;
        while (s < end && (*s == ' ' || *s == '\t')) s++;
        if (s == end) continue;
        if (memchr(s, '\0', (size_t)(end - s))) {
            rc = ct_errorf(err, "%s:%zu: a NUL byte", file, line);
            break;
        }
        char *path = csv_field(&s, end), *group = NULL;
        if (path && s < end && *s == ',') {
            s++;
            while (s < end && (*s == ' ' || *s == '\t')) s++;
            group = csv_field(&s, end);
        }
        if (!path || !group || s != end) {
            free(path);
            free(group);
            rc = ct_errorf(err, "%s:%zu: expected two columns path,group", file, line);
            break;
        }
        if (n == 0 && line_is_header(path, group)) {
            free(path);
            free(group);
            continue;
        }
        if (!path[0] || !group[0]) {
            rc = ct_errorf(err, "%s:%zu: empty %s", file, line, path[0] ? "group" : "path");
            free(path);
            free(group);
            break;
        }
        if (n == cap) rows = ct_realloc(rows, (cap = cap ? 2 * cap : 256) * sizeof *rows);
        rows[n++] = (CsvRow){path, group, line};
    }
    free(data);
    if (rc) {
        free_rows(rows, n);
        return -1;
    }
    qsort(rows, n, sizeof *rows, cmp_row);
    for (size_t k = 1; k < n; k++)
        if (strcmp(rows[k].path, rows[k - 1].path) == 0 && strcmp(rows[k].group, rows[k - 1].group) != 0) {
            size_t a = rows[k - 1].line < rows[k].line ? rows[k - 1].line : rows[k].line;
            size_t b = rows[k - 1].line < rows[k].line ? rows[k].line : rows[k - 1].line;
            ct_errorf(err, "%s:%zu: %s is given group '%s' here and '%s' on line %zu", file, b, rows[k].path,
                      rows[k - 1].line < rows[k].line ? rows[k].group : rows[k - 1].group,
                      rows[k - 1].line < rows[k].line ? rows[k - 1].group : rows[k].group, a);
            free_rows(rows, n);
            return -1;
        }
    *out = rows;
    *n_out = n;
    return 0;
}

static int groups_from_file(DataSet *ds, const DataSpec *spec, CtError *err) {
    CsvRow *rows = NULL;
    size_t n = 0;
    if (read_csv(spec->group_file, &rows, &n, err)) return -1;
    int rc = 0;
    for (size_t i = 0; i < ds->n && rc == 0; i++) {
        CsvRow key = {.path = ds->items[i].rel};
        const CsvRow *hit = bsearch(&key, rows, n, sizeof *rows, cmp_row);
        if (!hit) rc = ct_errorf(err, "%s: no row for %s (every image needs a group)", spec->group_file, ds->items[i].rel);
        else ds->items[i].group = ct_strdup(hit->group);
    }
    free_rows(rows, n);
    return rc;
}

// ---- grouped fraction split ----

static void split_by_group(DataSet *ds, const DataSpec *spec) {
    size_t *unit_of = ct_malloc_array(ds->n ? ds->n : 1, sizeof *unit_of);
    size_t(*counts)[2];
    size_t nu = folds_units(ds, NULL, unit_of, &counts);
    int *bin = ct_malloc_array(nu ? nu : 1, sizeof *bin);
    folds_balance((const size_t(*)[2])counts, nu, spec->fractions, DATA_SPLITS, spec->seed, FOLDS_STREAM_SPLIT, bin);
    for (size_t i = 0; i < ds->n; i++) ds->items[i].split = bin[unit_of[i]];
    free(bin);
    free(counts);
    free(unit_of);
}

// ---- split files ----

typedef struct {
    const char *group;
    size_t item;
} ByGroup;

static int cmp_by_group(const void *pa, const void *pb) {
    const ByGroup *a = pa, *b = pb;
    int c = strcmp(a->group, b->group);
    return c ? c : (a->item > b->item) - (a->item < b->item);
}

static char *split_file_of(const DataSpec *spec, const DataItem *it) {
    return ct_asprintf("%s/%s/%s%s.txt", spec->root, spec->split_dir, split_name(it->split),
                       spec->classes[it->cls].folder);
}

static int check_straddle(const DataSet *ds, const DataSpec *spec, CtError *err) {
    ByGroup *g = ct_malloc_array(ds->n ? ds->n : 1, sizeof *g);
    for (size_t i = 0; i < ds->n; i++) g[i] = (ByGroup){ds->items[i].group, i};
    qsort(g, ds->n, sizeof *g, cmp_by_group);
    size_t warned = 0, straddling = 0;
    int rc = 0;
    for (size_t a = 0; a < ds->n && rc == 0;) {
        size_t b = a + 1;
        while (b < ds->n && strcmp(g[b].group, g[a].group) == 0) b++;
        // The group's first image, and its first image in another split.
        const DataItem *first = &ds->items[g[a].item], *other = NULL;
        for (size_t k = a + 1; k < b && !other; k++)
            if (ds->items[g[k].item].split != first->split) other = &ds->items[g[k].item];
        if (other) {
            straddling++;
            char *fa = split_file_of(spec, first), *fb = split_file_of(spec, other);
            if (spec->on_straddle == DATA_STRADDLE_ERROR)
                rc = ct_errorf(err, "group '%s' is in two splits: %s (%s) and %s (%s); a patient's images must share "
                               "one split (or set data.groups.on_straddle: warn)",
                               first->group, fa, first->rel, fb, other->rel);
            else if (warned++ < 20)
                ct_warn("group '%s' is in two splits: %s (%s) and %s (%s)", first->group, fa, first->rel, fb,
                        other->rel);
            free(fa);
            free(fb);
        }
        a = b;
    }
    if (rc == 0 && straddling > 20) ct_warn("%zu groups in all are in more than one split", straddling);
    free(g);
    return rc;
}

// ---- entry ----

int groups_apply(DataSet *ds, const DataSpec *spec, CtError *err) {
    int rc = 0;
    if (spec->groups == DATA_GROUPS_PATTERN) rc = groups_from_pattern(ds, spec, err);
    else if (spec->groups == DATA_GROUPS_FILE) rc = groups_from_file(ds, spec, err);
    else
        for (size_t i = 0; i < ds->n; i++) ds->items[i].group = ct_strdup(ds->items[i].rel);
    if (rc || spec->groups == DATA_GROUPS_NONE) return rc;
    // Without groups the per-class split of dataset.c stands as it always
    // has (the same images in the same splits, the same trial ids).
    if (spec->split == DATA_SPLIT_FRACTIONS) split_by_group(ds, spec);
    else rc = check_straddle(ds, spec, err);
    return rc;
}
