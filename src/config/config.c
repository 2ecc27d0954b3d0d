/*
 * config.c — reading a sweep configuration. libfyaml builds the YAML
 * document; a walker matches it against the key table (config_table.c) and
 * parses and range-checks each value by its row (config_print.c writes and
 * describes values by the same rows).
 *
 * Errors are one line, "FILE:LINE: KEY: what". libfyaml's own diagnostics
 * are collected rather than printed, and the first becomes that line.
 * Duplicate keys are let through the YAML parser and caught by the walker, so
 * the message can name the key.
 */
#include "config/config.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config/config_table.h"

#define CONFIG_MAX_BYTES ((size_t)1 << 20)
#define SCALAR_MAX 4096  // longest scalar read (paths)

static int is_digit(int ch) { return ch >= '0' && ch <= '9'; }

// ---- errors ----

int config_fail(ConfigCtx *c, int line, const char *key, const char *fmt, ...) {
    char msg[CT_ERROR_MAX], all[CT_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    // Each part is cut to its share of the one-line message.
    snprintf(all, sizeof all, "%.300s:%d: %.160s: %.540s", c->name, line > 0 ? line : 1, key[0] ? key : "(document)", msg);
    // One line, whatever the input held: keys are user text too (a class
    // folder name may hold a line break).
    for (char *p = all; *p; p++)
        if ((unsigned char)*p < 0x20) *p = ' ';
    return ct_errorf(c->err, "%s", all);
}

// User text for a message: control characters replaced, long text cut.
void config_show_text(char *out, size_t cap, const char *s, size_t len) {
    size_t n = 0;
    for (size_t i = 0; i < len && n + 4 < cap; i++) {
        if (i == CONFIG_SHOW_MAX) {
            memcpy(out + n, "...", 3);
            n += 3;
            break;
        }
        unsigned char ch = (unsigned char)s[i];
        out[n++] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
    }
    out[n] = 0;
}

// ---- table lookups ----

int config_key_index(const char *path) {
    for (size_t i = 0; i < config_n_keys; i++)
        if (strcmp(config_keys[i].path, path) == 0) return (int)i;
    return -1;
}

int config_key_line(const ConfigCtx *c, const char *path) {
    int i = config_key_index(path);
    return i < 0 ? 0 : c->line[i];
}

// True when row path is a direct child of prefix ("" is the top level).
static int is_child(const char *path, const char *prefix) {
    size_t n = strlen(prefix);
    if (n == 0) return strchr(path, '.') == NULL;
    return strncmp(path, prefix, n) == 0 && path[n] == '.' && strchr(path + n + 1, '.') == NULL;
}

const char *config_last_part(const char *path) {
    const char *d = strrchr(path, '.');
    return d ? d + 1 : path;
}

// "a, b, c": the keys a section knows.
static void child_names(char *out, size_t cap, const char *prefix) {
    size_t n = 0;
    out[0] = 0;
    for (size_t i = 0; i < config_n_keys && n < cap; i++)
        if (is_child(config_keys[i].path, prefix))
            n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? ", " : "", config_last_part(config_keys[i].path));
}

static void join_path(char *out, size_t cap, const char *prefix, const char *name) {
    snprintf(out, cap, "%.200s%s%.64s", prefix, prefix[0] ? "." : "", name);
}

// ---- nodes ----

int config_node_line(struct fy_node *n, int fallback) {
    if (!n) return fallback;
    switch (fy_node_get_type(n)) {
    case FYNT_SCALAR: {
        struct fy_token *t = fy_node_get_scalar_token(n);
        const struct fy_mark *m = t ? fy_token_start_mark(t) : NULL;
        return m ? m->line + 1 : fallback;
    }
    case FYNT_SEQUENCE: {
        void *it = NULL;
        return config_node_line(fy_node_sequence_iterate(n, &it), fallback);
    }
    case FYNT_MAPPING: {
        void *it = NULL;
        struct fy_node_pair *p = fy_node_mapping_iterate(n, &it);
        return p ? config_node_line(fy_node_pair_key(p), fallback) : fallback;
    }
    }
    return fallback;
}

int config_node_is_null(struct fy_node *n) {
    if (!n) return 1;
    if (fy_node_get_type(n) != FYNT_SCALAR || fy_node_get_style(n) != FYNS_PLAIN) return 0;
    size_t len;
    const char *s = fy_node_get_scalar(n, &len);
    if (!s || len == 0) return 1;
    return (len == 1 && s[0] == '~') ||
           (len == 4 && (!memcmp(s, "null", 4) || !memcmp(s, "Null", 4) || !memcmp(s, "NULL", 4)));
}

const char *config_node_kind(struct fy_node *n) {
    if (config_node_is_null(n)) return "no value";
    switch (fy_node_get_type(n)) {
    case FYNT_SEQUENCE: return "a list";
    case FYNT_MAPPING: return "a mapping";
    default: return "a scalar";
    }
}

// Follows an alias to its anchored node; *n = NULL stays NULL.
static int deref(ConfigCtx *c, struct fy_node **n, int line, const char *key) {
    if (*n && fy_node_is_alias(*n)) {
        struct fy_node *r = fy_node_resolve_alias(*n);
        if (!r) return config_fail(c, line, key, "alias without a matching anchor");
        *n = r;
    }
    return 0;
}

// ---- scalars ----

// 0 and *neg, *mag for [+-]digits; -1 when not an integer; -2 when too large.
static int parse_integer(const char *s, int *neg, unsigned long long *mag) {
    *neg = s[0] == '-';
    const char *p = s + (s[0] == '-' || s[0] == '+');
    if (!is_digit((unsigned char)*p)) return -1;
    for (const char *q = p; *q; q++)
        if (!is_digit((unsigned char)*q)) return -1;
    errno = 0;
    *mag = strtoull(p, NULL, 10);
    return errno == ERANGE ? -2 : 0;
}

// 0 and *v for a finite decimal number (1e-4, 1.0e-4, .5); -1 otherwise.
static int parse_number(const char *s, double *v) {
    if (!s[0]) return -1;
    for (const char *p = s; *p; p++)
        if (!(is_digit((unsigned char)*p) || *p == '.' || *p == 'e' || *p == 'E' || *p == '+' || *p == '-'))
            return -1;
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return *end || !isfinite(*v) ? -1 : 0;
}

static int in_bounds(const ConfigKey *k, double v) {
    int lo = (k->flags & CKF_MIN_OPEN) ? v > k->min : v >= k->min;
    int hi = (k->flags & CKF_MAX_OPEN) ? v < k->max : v <= k->max;
    return lo && hi;
}

// Resolves a path against the config file's folder, checks it and stores
// the canonical absolute path.
static int parse_path(ConfigCtx *c, const ConfigKey *k, const char *text, int line, const char *key, char *field) {
    char joined[2 * SCALAR_MAX + 2], shown[CONFIG_SHOW_MAX + 8];
    if (text[0] == '/') snprintf(joined, sizeof joined, "%s", text);
    else snprintf(joined, sizeof joined, "%s/%s", c->dir, text);
    config_show_text(shown, sizeof shown, text, strlen(text));
    struct stat st;
    if (stat(joined, &st) != 0) {
        // A stored configuration names the weights where they were then.
        if (c->stored && strncmp(k->path, "weights.", 8) == 0 && strlen(joined) < k->size) {
            memcpy(field, joined, strlen(joined) + 1);
            return 0;
        }
        return config_fail(c, line, key, "%s (%s): %s", shown, joined, strerror(errno));
    }
    if ((k->flags & CKF_DIR) && !S_ISDIR(st.st_mode)) return config_fail(c, line, key, "%s is not a folder", joined);
    if ((k->flags & CKF_FILE) && !S_ISREG(st.st_mode))
        return config_fail(c, line, key, "%s is not a regular file", joined);
    char *real = realpath(joined, NULL);
    if (!real) return config_fail(c, line, key, "%s: %s", joined, strerror(errno));
    int too_long = strlen(real) >= k->size;
    if (!too_long) memcpy(field, real, strlen(real) + 1);
    free(real);
    if (too_long) return config_fail(c, line, key, "%s: path too long", joined);
    return 0;
}

int config_parse_scalar(ConfigCtx *c, const ConfigKey *k, ConfigType t, struct fy_node *n, int line,
                        const char *key, void *field) {
    char want[256];
    config_describe(want, sizeof want, k, t, 0);
    if (deref(c, &n, line, key)) return -1;
    if (config_node_is_null(n) || fy_node_get_type(n) != FYNT_SCALAR)
        return config_fail(c, line, key, "expected %s, got %s", want, config_node_kind(n));
    size_t len;
    const char *raw = fy_node_get_scalar(n, &len);
    char text[SCALAR_MAX + 1], shown[CONFIG_SHOW_MAX + 8];
    config_show_text(shown, sizeof shown, raw ? raw : "", raw ? len : 0);
    if (!raw || len > SCALAR_MAX || memchr(raw, 0, len)) return config_fail(c, line, key, "value too long or not text");
    memcpy(text, raw, len);
    text[len] = 0;
    int plain = fy_node_get_style(n) == FYNS_PLAIN;
    int numeric = t == CK_SIZE || t == CK_U32 || t == CK_INT || t == CK_U64 || t == CK_MIB || t == CK_NUM;
    if ((numeric || t == CK_BOOL) && !plain)
        return config_fail(c, line, key, "expected %s, got the quoted string \"%s\" (write it without quotes)", want,
                           shown);
    if (numeric && t != CK_NUM) {
        int neg;
        unsigned long long mag;
        int rc = parse_integer(text, &neg, &mag);
        double d;
        if (rc == -1 && parse_number(text, &d) == 0)
            return config_fail(c, line, key, "%s is not an integer (expected %s)", shown, want);
        if (rc == -1) return config_fail(c, line, key, "expected %s, got %s", want, shown);
        if (rc == -2 || (t == CK_U64 && neg && mag != 0))
            return config_fail(c, line, key, "%s is out of range (expected %s)", shown, want);
        if (t == CK_U64) {
            *(uint64_t *)field = (uint64_t)mag;
            return 0;
        }
        double v = neg ? -(double)mag : (double)mag;
        if (!in_bounds(k, v)) return config_fail(c, line, key, "%s is outside the range (expected %s)", shown, want);
        switch (t) {
        case CK_SIZE: *(size_t *)field = (size_t)mag; break;
        case CK_MIB: *(size_t *)field = (size_t)mag << 20; break;
        case CK_U32: *(uint32_t *)field = (uint32_t)mag; break;
        default: *(int *)field = neg ? -(int)mag : (int)mag; break;
        }
        return 0;
    }
    switch (t) {
    case CK_NUM: {
        double v;
        if (parse_number(text, &v)) return config_fail(c, line, key, "expected %s, got %s", want, shown);
        if (!in_bounds(k, v)) return config_fail(c, line, key, "%s is outside the range (expected %s)", shown, want);
        *(double *)field = v;
        return 0;
    }
    case CK_BOOL:
        if (strcmp(text, "true") == 0) *(int *)field = 1;
        else if (strcmp(text, "false") == 0) *(int *)field = 0;
        else return config_fail(c, line, key, "expected true or false, got %s", shown);
        return 0;
    case CK_ENUM:
        if (k->parse_enum(text, field)) return config_fail(c, line, key, "%s is not %s", shown, want);
        return 0;
    case CK_STR:
        if (!text[0]) return config_fail(c, line, key, "empty string");
        if (len >= k->size) return config_fail(c, line, key, "%s is too long (at most %zu bytes)", shown, k->size - 1);
        memcpy(field, text, len + 1);
        return 0;
    case CK_PATH:
        if (!text[0]) return config_fail(c, line, key, "empty path");
        return parse_path(c, k, text, line, key, field);
    default: return config_fail(c, line, key, "internal: row of type %d read as a scalar", (int)t);
    }
}

// ---- lists and mappings ----

static int elems_equal(const ConfigKey *k, const void *a, const void *b) {
    if (k->elem_equal) return k->elem_equal(a, b);
    switch (k->elem) {
    case CK_STR:
    case CK_PATH: return strcmp(a, b) == 0;
    case CK_NUM: return *(const double *)a == *(const double *)b;
    default: return memcmp(a, b, k->elem_size) == 0;
    }
}

static int parse_list(ConfigCtx *c, const ConfigKey *k, struct fy_node *n, int line, const char *key, void *base) {
    char want[256];
    config_describe(want, sizeof want, k, k->elem, 0);
    if (config_node_is_null(n) || fy_node_get_type(n) != FYNT_SEQUENCE)
        return config_fail(c, line, key, "expected a list, each value %s, got %s",
                           k->elem == CK_SECTION ? "a mapping" : want, config_node_kind(n));
    int count = fy_node_sequence_item_count(n);
    size_t cnt = count > 0 ? (size_t)count : 0;
    if (cnt == 0 && k->min_n > 0) return config_fail(c, line, key, "empty list: give at least one value");
    if (k->min_n == k->max_n && cnt != k->min_n)
        return config_fail(c, line, key, "needs exactly %zu values, got %zu", k->min_n, cnt);
    if (cnt < k->min_n) return config_fail(c, line, key, "needs at least %zu values, got %zu", k->min_n, cnt);
    if (cnt > k->max_n) return config_fail(c, line, key, "%zu values, at most %zu allowed", cnt, k->max_n);
    char *arr = (char *)base + k->off;
    char tprefix[128];
    snprintf(tprefix, sizeof tprefix, "%s[]", k->path);
    void *it = NULL;
    struct fy_node *e;
    for (size_t i = 0; (e = fy_node_sequence_iterate(n, &it)) != NULL; i++) {
        char ekey[256];
        snprintf(ekey, sizeof ekey, "%.200s[%zu]", key, i);
        int eline = config_node_line(e, line);
        if (deref(c, &e, eline, ekey)) return -1;
        void *ptr = arr + i * k->elem_size;
        if (k->elem == CK_SECTION) {
            if (k->elem_init) k->elem_init(ptr);
            size_t plen = strlen(tprefix);
            for (size_t j = 0; j < config_n_keys; j++)
                if (strncmp(config_keys[j].path, tprefix, plen) == 0 && config_keys[j].path[plen] == '.')
                    c->line[j] = 0;
            if (config_node_is_null(e) || fy_node_get_type(e) != FYNT_MAPPING)
                return config_fail(c, eline, ekey, "expected a mapping, got %s", config_node_kind(e));
            if (config_walk_mapping(c, e, tprefix, ekey, ptr, eline)) return -1;
            if (k->elem_finish && k->elem_finish(c, ptr, eline, ekey)) return -1;
        } else if (config_parse_scalar(c, k, k->elem, e, eline, ekey, ptr)) {
            return -1;
        }
        if (k->check && k->check(c, k, ptr, eline, ekey)) return -1;
        if (k->flags & CKF_UNIQUE)
            for (size_t j = 0; j < i; j++)
                if (elems_equal(k, arr + j * k->elem_size, ptr))
                    return config_fail(c, eline, ekey, "repeats %s[%zu]: each grid point would run twice", key, j);
    }
    if (!(k->flags & CKF_NOCOUNT)) *(size_t *)((char *)base + k->off2) = cnt;
    return 0;
}

static int parse_pair(ConfigCtx *c, const ConfigKey *k, struct fy_node *n, int line, const char *key, void *base) {
    char want[256];
    config_describe(want, sizeof want, k, CK_PAIR, 0);
    if (config_node_is_null(n) || fy_node_get_type(n) != FYNT_SEQUENCE || fy_node_sequence_item_count(n) != 2)
        return config_fail(c, line, key, "expected %s, got %s", want, config_node_kind(n));
    double *a = (double *)((char *)base + k->off), *b = (double *)((char *)base + k->off2);
    void *it = NULL;
    struct fy_node *e0 = fy_node_sequence_iterate(n, &it), *e1 = fy_node_sequence_iterate(n, &it);
    char k0[256], k1[256];
    snprintf(k0, sizeof k0, "%.200s[0]", key);
    snprintf(k1, sizeof k1, "%.200s[1]", key);
    if (config_parse_scalar(c, k, CK_NUM, e0, config_node_line(e0, line), k0, a) ||
        config_parse_scalar(c, k, CK_NUM, e1, config_node_line(e1, line), k1, b))
        return -1;
    if (*a > *b) return config_fail(c, line, key, "[%g, %g]: the first value is the minimum", *a, *b);
    return 0;
}

static int parse_value(ConfigCtx *c, const ConfigKey *k, struct fy_node *n, int line, const char *key, void *base) {
    if (deref(c, &n, line, key)) return -1;
    switch (k->type) {
    case CK_SECTION: return config_walk_mapping(c, n, k->path, key, base, line);
    case CK_SPECIAL: return k->special(c, k, n, line, key);
    case CK_LIST: return parse_list(c, k, n, line, key, base);
    case CK_PAIR: return parse_pair(c, k, n, line, key, base);
    default: {
        void *field = (char *)base + k->off;
        if (config_parse_scalar(c, k, k->type, n, line, key, field)) return -1;
        return k->check ? k->check(c, k, field, line, key) : 0;
    }
    }
}

int config_walk_mapping(ConfigCtx *c, struct fy_node *map, const char *tprefix, const char *dprefix, void *base,
                        int line) {
    char known[512];
    child_names(known, sizeof known, tprefix);
    if (!config_node_is_null(map)) {
        if (fy_node_get_type(map) != FYNT_MAPPING)
            return config_fail(c, config_node_line(map, line), dprefix, "expected a mapping with keys %s, got %s",
                               known, config_node_kind(map));
        void *it = NULL;
        struct fy_node_pair *p;
        while ((p = fy_node_mapping_iterate(map, &it)) != NULL) {
            struct fy_node *kn = fy_node_pair_key(p);
            int kline = config_node_line(kn, line);
            size_t klen = 0;
            const char *ks = kn && fy_node_get_type(kn) == FYNT_SCALAR ? fy_node_get_scalar(kn, &klen) : NULL;
            char name[CONFIG_SHOW_MAX + 8], tpath[300], dpath[300];
            config_show_text(name, sizeof name, ks ? ks : "?", ks ? klen : 1);
            join_path(dpath, sizeof dpath, dprefix, name);
            int idx = -1;
            if (ks && klen < 64 && !memchr(ks, 0, klen) && !memchr(ks, '.', klen) && !memchr(ks, '[', klen)) {
                join_path(tpath, sizeof tpath, tprefix, name);
                idx = config_key_index(tpath);
            }
            if (idx < 0) return config_fail(c, kline, dpath, "unknown key (known here: %s)", known);
            if (c->line[idx])
                return config_fail(c, kline, dpath, "duplicate key (first given on line %d)", c->line[idx]);
            c->line[idx] = kline;
            // A section reports missing keys at its own key; a value where it stands.
            struct fy_node *v = fy_node_pair_value(p);
            int vline = config_keys[idx].type == CK_SECTION ? kline : config_node_line(v, kline);
            if (parse_value(c, &config_keys[idx], v, vline, dpath, base)) return -1;
        }
    }
    for (size_t i = 0; i < config_n_keys; i++)
        if ((config_keys[i].flags & CKF_REQUIRED) && is_child(config_keys[i].path, tprefix) && !c->line[i]) {
            char dpath[300];
            join_path(dpath, sizeof dpath, dprefix, config_last_part(config_keys[i].path));
            return config_fail(c, line, dpath, "required (%s)", config_key_help(&config_keys[i]));
        }
    return 0;
}

// ---- load ----

static void diag_drop(struct fy_diag *diag, void *user, const char *buf, size_t len) {
    (void)diag, (void)user, (void)buf, (void)len;
}

// The first error libfyaml collected, as our one line.
static int yaml_fail(ConfigCtx *c, struct fy_diag *diag) {
    void *it = NULL;
    struct fy_diag_error *e;
    while ((e = fy_diag_errors_iterate(diag, &it)) != NULL)
        if (e->type >= FYET_ERROR) return config_fail(c, e->line, "yaml", "%s", e->msg ? e->msg : "syntax error");
    return config_fail(c, 1, "yaml", "cannot be parsed");
}

// The offset of the first byte that is not part of a printable UTF-8
// character (YAML's c-printable: tab, line breaks, U+0020..U+007E, U+0085,
// U+00A0..U+D7FF, U+E000..U+FFFD, U+10000..U+10FFFF), or len. Checked before
// libfyaml sees the text: some malformed bytes send its scanner into an
// endless loop (0.7.12, in a directive line).
static size_t text_check(const uint8_t *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        uint32_t c = s[i], min;
        size_t n;
        if (c < 0x80) {
            if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) return i;
            i++;
            continue;
        }
        if ((c & 0xe0) == 0xc0) n = 2, c &= 0x1f, min = 0x80;
        else if ((c & 0xf0) == 0xe0) n = 3, c &= 0x0f, min = 0x800;
        else if ((c & 0xf8) == 0xf0) n = 4, c &= 0x07, min = 0x10000;
        else return i;
        if (len - i < n) return i;
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return i;
            c = (c << 6) | (s[i + k] & 0x3f);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff) || c == 0xfffe || c == 0xffff ||
            (c < 0xa0 && c != 0x85))
            return i;
        i += n;
    }
    return len;
}

// Programming errors in the table: a row whose field size does not match its type.
static void table_self_check(void) {
    if (config_n_keys > CONFIG_MAX_KEYS)
        fatal("config: %zu keys, CONFIG_MAX_KEYS is %d", config_n_keys, CONFIG_MAX_KEYS);
    for (size_t i = 0; i < config_n_keys; i++) {
        const ConfigKey *k = &config_keys[i];
        ConfigType t = k->type == CK_LIST ? k->elem : k->type;
        size_t sz = k->type == CK_LIST ? k->elem_size : k->size;
        size_t want = t == CK_SIZE || t == CK_MIB ? sizeof(size_t)
                      : t == CK_U32              ? sizeof(uint32_t)
                      : t == CK_INT || t == CK_BOOL ? sizeof(int)
                      : t == CK_U64              ? sizeof(uint64_t)
                      : t == CK_NUM || t == CK_PAIR ? sizeof(double)
                                                 : sz;
        if (sz != want || (t == CK_ENUM && (!k->choices || !k->parse_enum)))
            fatal("config: row %s: field size %zu, type wants %zu", k->path, sz, want);
    }
}

static int parse_text(SweepConfig *cfg, const char *name, const char *text, size_t len, int stored, CtError *err) {
    table_self_check();
    config_init(cfg);
    if (!name) name = "(config)";
    ConfigCtx c;
    memset(&c, 0, sizeof c);
    c.stored = stored;
    c.name = name;
    c.cfg = cfg;
    c.err = err;
    if (strlen(name) >= sizeof cfg->path) return ct_errorf(err, "%.64s...: file name too long", name);
    snprintf(cfg->path, sizeof cfg->path, "%s", name);
    const char *slash = strrchr(name, '/');
    if (!slash) snprintf(c.dir, sizeof c.dir, ".");
    else if (slash == name) snprintf(c.dir, sizeof c.dir, "/");
    else snprintf(c.dir, sizeof c.dir, "%.*s", (int)(slash - name), name);

    size_t bad = text_check((const uint8_t *)(text ? text : ""), text ? len : 0);
    if (bad < (text ? len : 0)) {
        int line = 1;
        for (size_t i = 0; i < bad; i++) line += text[i] == '\n';
        config_fail(&c, line, "yaml", "byte %zu (0x%02x) is not printable UTF-8 text", bad + 1,
                    (unsigned)(unsigned char)text[bad]);
        config_free(cfg);
        return -1;
    }

    struct fy_diag_cfg dc;
    fy_diag_cfg_default(&dc);
    dc.fp = NULL;
    dc.output_fn = diag_drop;
    dc.colorize = false;
    struct fy_diag *diag = fy_diag_create(&dc);
    if (!diag) fatal("libfyaml: cannot create a diagnostics object");
    fy_diag_set_collect_errors(diag, true);
    struct fy_parse_cfg pc = {.flags = FYPCF_QUIET | FYPCF_ALLOW_DUPLICATE_KEYS, .diag = diag};
    struct fy_parser *fyp = fy_parser_create(&pc);
    if (!fyp) fatal("libfyaml: cannot create a parser");
    int rc = 0;
    struct fy_document *doc = NULL;
    if (fy_parser_set_string(fyp, text ? text : "", text ? len : 0) != 0) rc = yaml_fail(&c, diag);
    if (!rc) {
        doc = fy_parse_load_document(fyp);
        if (fy_diag_got_error(diag)) rc = yaml_fail(&c, diag);
    }
    if (!rc && doc) {
        struct fy_document *more = fy_parse_load_document(fyp);
        if (more) {
            rc = config_fail(&c, config_node_line(fy_document_root(more), 1), "yaml",
                             "a second document: give one configuration per file");
            fy_parse_document_destroy(fyp, more);
        } else if (fy_diag_got_error(diag)) {
            rc = yaml_fail(&c, diag);
        }
    }
    if (!rc) rc = config_walk_mapping(&c, doc ? fy_document_root(doc) : NULL, "", "", cfg, 1);
    if (!rc) rc = config_finish(&c);
    if (doc) fy_parse_document_destroy(fyp, doc);
    fy_parser_destroy(fyp);
    fy_diag_destroy(diag);
    if (rc) {
        config_free(cfg);
        return -1;
    }
    cfg->yaml = ct_malloc(len + 1);
    if (len) memcpy(cfg->yaml, text, len);
    cfg->yaml[len] = 0;
    return 0;
}

int config_parse(SweepConfig *cfg, const char *name, const char *text, size_t len, CtError *err) {
    return parse_text(cfg, name, text, len, 0, err);
}

int config_parse_stored(SweepConfig *cfg, const char *name, const char *text, size_t len, CtError *err) {
    return parse_text(cfg, name, text, len, 1, err);
}

int config_load(SweepConfig *cfg, const char *path, CtError *err) {
    uint8_t *data;
    size_t len;
    if (ct_read_file(path, &data, &len, CONFIG_MAX_BYTES, err)) {
        config_init(cfg);
        return -1;
    }
    int rc = config_parse(cfg, path, (const char *)data, len, err);
    free(data);
    return rc;
}

void config_free(SweepConfig *cfg) {
    free(cfg->yaml);
    cfg->yaml = NULL;
}

// ---- accessors ----

const char *config_weights(const SweepConfig *cfg, const char *model) {
    int i = config_model_index(model);
    return i < 0 || i >= CONFIG_MAX_MODELS ? "" : cfg->weights[i];
}

void config_head_spec(HeadSpec *out, const SweepConfig *cfg, const char *model, size_t in_dim) {
    head_spec_default(out, model, in_dim);
    if (cfg->head_hidden_set) {
        out->n_hidden = cfg->head.n_hidden;
        memcpy(out->hidden, cfg->head.hidden, sizeof out->hidden);
    }
    if (cfg->head_dropout_set) out->dropout = cfg->head.dropout;
    out->standardize = cfg->head.standardize;
}
