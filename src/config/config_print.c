/*
 * config_print.c — the configuration as text, generated from the key table:
 * values in YAML flow style, the resolved configuration (config_print) that
 * config_parse reads back to the same SweepConfig, and the help
 * (config_print_help) with each key's type, default and meaning.
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/config_table.h"

// ---- buffers ----

void cbuf_printf(ConfigBuf *b, const char *fmt, ...) {
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n > 0) {
        if (b->n + (size_t)n + 1 > b->cap) {
            size_t cap = b->cap ? b->cap : 256;
            while (cap < b->n + (size_t)n + 1) cap *= 2;
            b->s = ct_realloc(b->s, cap);
            b->cap = cap;
        }
        vsnprintf(b->s + b->n, b->cap - b->n, fmt, ap2);
        b->n += (size_t)n;
    }
    va_end(ap2);
}

void cbuf_free(ConfigBuf *b) {
    free(b->s);
    memset(b, 0, sizeof *b);
}

static int is_alpha(int ch) { return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'); }
static int is_digit(int ch) { return ch >= '0' && ch <= '9'; }

// True when s, written plain, reads back as the same string (not a number,
// boolean or null, no character YAML would treat specially).
static int plain_ok(const char *s) {
    static const char *const reserved[] = {"true", "false", "null", "yes", "no", "on", "off", "y", "n", NULL};
    if (!(is_alpha((unsigned char)s[0]) || s[0] == '_' || s[0] == '/')) return 0;
    for (const char *p = s; *p; p++) {
        int ch = (unsigned char)*p;
        if (!(is_alpha(ch) || is_digit(ch) || ch == '_' || ch == '-' || ch == '.' || ch == '/')) return 0;
    }
    for (int i = 0; reserved[i]; i++)
        if (strcasecmp(s, reserved[i]) == 0) return 0;
    return 1;
}

void cbuf_yaml_str(ConfigBuf *b, const char *s) {
    if (plain_ok(s)) {
        cbuf_printf(b, "%s", s);
        return;
    }
    cbuf_printf(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            cbuf_printf(b, "\\%c", *p);
        } else if (*p < 0x20 || *p == 0x7f) {
            cbuf_printf(b, "\\x%02x", *p);
        } else if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f && p[1] != 0x85) {
            // C1 controls, U+FFFE and U+FFFF are not printable YAML text
            // (config_parse refuses them raw): escaped, they read back.
            cbuf_printf(b, "\\u%04x", p[1]);
            p++;
        } else if (p[0] == 0xef && p[1] == 0xbf && (p[2] == 0xbe || p[2] == 0xbf)) {
            cbuf_printf(b, "\\u%04x", 0xff00u | p[2]);
            p += 2;
        } else {
            cbuf_printf(b, "%c", *p);
        }
    }
    cbuf_printf(b, "\"");
}

void cbuf_num(ConfigBuf *b, double v) {
    char tmp[40];
    if (v == floor(v) && fabs(v) < 1e15) {  // integers in full: 10, not 1e+01
        cbuf_printf(b, "%.0f", v);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v) break;
    }
    cbuf_printf(b, "%s", tmp);
}

// The choice whose parse gives the field's value.
static const char *enum_name(const ConfigKey *k, const void *field) {
    for (int i = 0; k->choices[i]; i++) {
        unsigned char tmp[16] = {0};
        if (k->size <= sizeof tmp && k->parse_enum(k->choices[i], tmp) == 0 && memcmp(tmp, field, k->size) == 0)
            return k->choices[i];
    }
    return "?";
}

static void cbuf_scalar(ConfigBuf *b, const ConfigKey *k, ConfigType t, const void *field) {
    switch (t) {
    case CK_SIZE: cbuf_printf(b, "%zu", *(const size_t *)field); break;
    case CK_U32: cbuf_printf(b, "%" PRIu32, *(const uint32_t *)field); break;
    case CK_INT: cbuf_printf(b, "%d", *(const int *)field); break;
    case CK_U64: cbuf_printf(b, "%" PRIu64, *(const uint64_t *)field); break;
    case CK_MIB: cbuf_printf(b, "%zu", *(const size_t *)field >> 20); break;
    case CK_NUM: cbuf_num(b, *(const double *)field); break;
    case CK_BOOL: cbuf_printf(b, "%s", *(const int *)field ? "true" : "false"); break;
    case CK_ENUM: cbuf_printf(b, "%s", enum_name(k, field)); break;
    case CK_STR:
    case CK_PATH: cbuf_yaml_str(b, (const char *)field); break;
    default: cbuf_printf(b, "?"); break;
    }
}

// The rows of a mapping element (grid.clr[] rows) as a flow mapping.
static void cbuf_element(ConfigBuf *b, const ConfigKey *list, const void *elem) {
    char prefix[128];
    snprintf(prefix, sizeof prefix, "%s[].", list->path);
    size_t plen = strlen(prefix);
    int first = 1;
    cbuf_printf(b, "{");
    for (size_t i = 0; i < config_n_keys; i++) {
        const ConfigKey *k = &config_keys[i];
        if (strncmp(k->path, prefix, plen) != 0) continue;
        cbuf_printf(b, "%s%s: ", first ? "" : ", ", k->path + plen);
        cbuf_value(b, k, elem);
        first = 0;
    }
    cbuf_printf(b, "}");
}

void cbuf_value(ConfigBuf *b, const ConfigKey *k, const void *base) {
    const char *field = (const char *)base + k->off;
    switch (k->type) {
    case CK_PAIR:
        cbuf_printf(b, "[");
        cbuf_num(b, *(const double *)field);
        cbuf_printf(b, ", ");
        cbuf_num(b, *(const double *)((const char *)base + k->off2));
        cbuf_printf(b, "]");
        break;
    case CK_LIST: {
        size_t n = (k->flags & CKF_NOCOUNT) ? k->max_n : *(const size_t *)((const char *)base + k->off2);
        cbuf_printf(b, "[");
        for (size_t i = 0; i < n; i++) {
            if (i) cbuf_printf(b, ", ");
            if (k->elem == CK_SECTION) cbuf_element(b, k, field + i * k->elem_size);
            else cbuf_scalar(b, k, k->elem, field + i * k->elem_size);
        }
        cbuf_printf(b, "]");
        break;
    }
    case CK_SPECIAL: k->format(b, k, base); break;
    case CK_SECTION: cbuf_printf(b, "{}"); break;
    default: cbuf_scalar(b, k, k->type, field); break;
    }
}

// ---- descriptions ----

static void bound_num(char *out, size_t cap, double v) {
    if (v == floor(v) && fabs(v) < 1e15) snprintf(out, cap, "%.0f", v);
    else snprintf(out, cap, "%g", v);
}

static void bounds_text(char *out, size_t cap, const ConfigKey *k) {
    char lo[32], hi[32];
    bound_num(lo, sizeof lo, k->min);
    bound_num(hi, sizeof hi, k->max);
    if (isinf(k->max)) snprintf(out, cap, "%s %s", (k->flags & CKF_MIN_OPEN) ? ">" : ">=", lo);
    else
        snprintf(out, cap, "in %c%s, %s%c", (k->flags & CKF_MIN_OPEN) ? '(' : '[', lo, hi,
                 (k->flags & CKF_MAX_OPEN) ? ')' : ']');
}

// "an integer in [1, 4096]", "one of adam, adamw", ...; plural: "integers in ...".
void config_describe(char *out, size_t cap, const ConfigKey *k, ConfigType t, int plural) {
    char b[96];
    switch (t) {
    case CK_SIZE:
    case CK_U32:
    case CK_INT:
    case CK_MIB:
    case CK_NUM:
        bounds_text(b, sizeof b, k);
        snprintf(out, cap, "%s%s %s",
                 t == CK_NUM ? (plural ? "numbers" : "a number") : (plural ? "integers" : "an integer"),
                 t == CK_MIB ? " (MiB)" : "", b);
        break;
    case CK_U64: snprintf(out, cap, "%s >= 0", plural ? "integers" : "an integer"); break;
    case CK_BOOL: snprintf(out, cap, "true or false"); break;
    case CK_ENUM: {
        size_t n = (size_t)snprintf(out, cap, "one of ");
        for (int i = 0; k->choices[i] && n < cap; i++)
            n += (size_t)snprintf(out + n, cap - n, "%s%s", i ? ", " : "", k->choices[i]);
        break;
    }
    case CK_STR: snprintf(out, cap, "%s", plural ? "strings" : "a string"); break;
    case CK_PATH:
        snprintf(out, cap, "%s to a %s", plural ? "paths" : "a path", (k->flags & CKF_DIR) ? "folder" : "file");
        break;
    case CK_PAIR:
        bounds_text(b, sizeof b, k);
        snprintf(out, cap, "a list [min, max] of two numbers %s", b);
        break;
    case CK_LIST: snprintf(out, cap, "a list"); break;
    case CK_SECTION: snprintf(out, cap, "a mapping"); break;
    case CK_SPECIAL: snprintf(out, cap, "%s", k->type_note ? k->type_note : "a value"); break;
    }
}

// ---- printing ----

void config_print(FILE *f, const SweepConfig *cfg) {
    ConfigBuf b = {0};
    cbuf_printf(&b, "# ctsweep configuration, resolved: every key, defaults filled in\n");
    if (cfg->path[0]) {
        cbuf_printf(&b, "# read from ");
        for (const char *p = cfg->path; *p; p++)  // a comment stays one line
            cbuf_printf(&b, "%c", (unsigned char)*p < 0x20 ? '?' : *p);
        cbuf_printf(&b, "\n");
    }
    char open[8][64];  // the sections whose header is written, outermost first
    int depth = 0;
    const char *skip = NULL;  // a hidden section: its rows are not printed
    for (size_t i = 0; i < config_n_keys; i++) {
        const ConfigKey *k = &config_keys[i];
        if (strstr(k->path, "[]") || (k->flags & CKF_NOPRINT)) continue;
        if (skip && strncmp(k->path, skip, strlen(skip)) == 0 && k->path[strlen(skip)] == '.') continue;
        skip = NULL;
        // Close sections that do not contain this row, open those that do.
        char parent[64];
        const char *dot = strrchr(k->path, '.');
        snprintf(parent, sizeof parent, "%.*s", dot ? (int)(dot - k->path) : 0, k->path);
        while (depth > 0) {
            size_t n = strlen(open[depth - 1]);
            if (strncmp(parent, open[depth - 1], n) == 0 && (parent[n] == 0 || parent[n] == '.')) break;
            depth--;
        }
        while (parent[0] && strlen(depth ? open[depth - 1] : "") < strlen(parent) && depth < 8) {
            const char *from = depth ? parent + strlen(open[depth - 1]) + 1 : parent;
            const char *end = strchr(from, '.');
            size_t n = end ? (size_t)(end - parent) : strlen(parent);
            snprintf(open[depth], sizeof open[depth], "%.*s", (int)n, parent);
            cbuf_printf(&b, "%*s%s:\n", depth * 2, "", config_last_part(open[depth]));
            depth++;
        }
        const char *name = config_last_part(k->path);
        int shown = !k->show || k->show(cfg);
        if (shown && (k->flags & CKF_OMIT_EMPTY) && !((const char *)cfg + k->off)[0]) shown = 0;
        if (!shown) {
            if (config_key_hidden_note(k))
                cbuf_printf(&b, "%*s# %s: %s\n", depth * 2, "", name, config_key_hidden_note(k));
            if (k->type == CK_SECTION) skip = k->path;
            continue;
        }
        if (k->type == CK_SECTION) continue;  // written with its first row
        if (k->type == CK_LIST && k->elem == CK_SECTION) {
            cbuf_printf(&b, "%*s%s:\n", depth * 2, "", name);
            size_t n = *(const size_t *)((const char *)cfg + k->off2);
            for (size_t j = 0; j < n; j++) {
                cbuf_printf(&b, "%*s  - ", depth * 2, "");
                cbuf_element(&b, k, (const char *)cfg + k->off + j * k->elem_size);
                cbuf_printf(&b, "\n");
            }
            continue;
        }
        cbuf_printf(&b, "%*s%s: ", depth * 2, "", name);
        cbuf_value(&b, k, cfg);
        cbuf_printf(&b, "\n");
    }
    if (b.s) fputs(b.s, f);
    cbuf_free(&b);
}

// Writes text wrapped at 78 columns, each line indented.
static void print_wrapped(FILE *f, const char *text, int indent) {
    const char *p = text;
    while (*p) {
        int width = 78 - indent, n = 0, cut = 0;
        while (p[n] && n < width) {
            if (p[n] == ' ') cut = n;
            n++;
        }
        if (!p[n] || cut == 0) cut = n;
        fprintf(f, "%*s%.*s\n", indent, "", cut, p);
        p += cut;
        while (*p == ' ') p++;
    }
}

void config_print_help(FILE *f) {
    SweepConfig def;
    config_init(&def);
    ClrSpec clr;
    config_clr_default(&clr);
    fprintf(f,
            "ctsweep sweep configuration (YAML). Every key is optional unless it says\n"
            "required. Unknown keys, wrong types, values out of range and repeated keys\n"
            "are errors, reported as one line FILE:LINE: KEY: what is wrong. Relative\n"
            "paths resolve against the configuration file's folder. The grid is the\n"
            "cartesian product model x epochs x batch_size x clr x seed.\n\n");
    for (size_t i = 0; i < config_n_keys; i++) {
        const ConfigKey *k = &config_keys[i];
        char type[400];
        if (k->type == CK_LIST) {
            char elem[200];
            char count[64];
            if (k->elem == CK_SECTION) snprintf(elem, sizeof elem, "mappings (keys %s[].*)", k->path);
            else config_describe(elem, sizeof elem, k, k->elem, 1);
            if (k->min_n == k->max_n) snprintf(count, sizeof count, "%zu values", k->min_n);
            else snprintf(count, sizeof count, "%zu to %zu values", k->min_n, k->max_n);
            snprintf(type, sizeof type, "a list of %s, %s%s", elem, count,
                     (k->flags & CKF_UNIQUE) ? ", each once" : "");
        } else {
            config_describe(type, sizeof type, k, k->type, 0);
        }
        ConfigBuf d = {0};
        if (k->flags & CKF_REQUIRED) cbuf_printf(&d, "required");
        else if (config_key_def_note(k)) cbuf_printf(&d, "default %s", config_key_def_note(k));
        else if (k->type != CK_SECTION) {
            cbuf_printf(&d, "default ");
            cbuf_value(&d, k, strstr(k->path, "[]") ? (const void *)&clr : (const void *)&def);
        }
        fprintf(f, "%s: %s%s%s\n", k->path, type, d.s ? "; " : "", d.s ? d.s : "");
        cbuf_free(&d);
        print_wrapped(f, config_key_help(k), 4);
    }
}
