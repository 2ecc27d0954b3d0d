/*
 * safetensors.c — strict reader for safetensors weight files.
 *
 * Weight files are downloaded from the internet, so nothing in them is
 * trusted: the header is parsed by a small strict JSON parser of our own
 * (UTF-8 checked, no duplicate keys, bounded nesting, integers checked for
 * overflow), and every tensor's dtype, shape and byte range is checked against
 * the data section before any byte of it is read. Tensors may not overlap;
 * gaps between them are tolerated. F16 and BF16 convert to float32 exactly.
 *
 * The file is read into memory whole (ct_read_file) rather than mapped, so a
 * file truncated by another process while we read it gives an error, never
 * a SIGBUS.
 */
#include "nn/safetensors.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000)
#define ST_MAX_FILE ((size_t)1 << 40)
#define ST_MAX_DEPTH 16
#define ST_NAME_SHOWN 160  // longest tensor name quoted in a message

// ---- dtypes ----

typedef struct {
    const char *name;
    StDtype dtype;
    unsigned bits;  // per element; sub-byte types pack
} StDtypeInfo;

static const StDtypeInfo ST_DTYPES[] = {
    {"F32", ST_F32, 32},     {"F16", ST_F16, 16},       {"BF16", ST_BF16, 16},    {"F64", ST_OTHER, 64},
    {"I64", ST_OTHER, 64},   {"U64", ST_OTHER, 64},     {"I32", ST_OTHER, 32},    {"U32", ST_OTHER, 32},
    {"I16", ST_OTHER, 16},   {"U16", ST_OTHER, 16},     {"I8", ST_OTHER, 8},      {"U8", ST_OTHER, 8},
    {"BOOL", ST_OTHER, 8},   {"F8_E5M2", ST_OTHER, 8},  {"F8_E4M3", ST_OTHER, 8}, {"F8_E8M0", ST_OTHER, 8},
    {"C64", ST_OTHER, 64},   {"F6_E2M3", ST_OTHER, 6},  {"F6_E3M2", ST_OTHER, 6}, {"F4", ST_OTHER, 4},
};

static const StDtypeInfo *dtype_lookup(const char *name) {
    for (size_t i = 0; i < sizeof ST_DTYPES / sizeof ST_DTYPES[0]; i++)
        if (strcmp(ST_DTYPES[i].name, name) == 0) return &ST_DTYPES[i];
    return NULL;
}

// ---- message helpers ----

// A name as it may appear in a one-line message: control characters become
// '?', and very long names are cut.
static const char *shown(const char *name, char *buf, size_t bufsize) {
    size_t n = 0;
    for (const char *s = name; *s && n + 4 < bufsize; s++) {
        unsigned char c = (unsigned char)*s;
        buf[n++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (name[n] != '\0') {
        while (n > 0 && ((unsigned char)name[n] & 0xc0) == 0x80) n--;  // whole UTF-8 characters only
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
    return buf;
}

static void append(char *buf, size_t size, size_t *n, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void append(char *buf, size_t size, size_t *n, const char *fmt, ...) {
    if (*n >= size) return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(buf + *n, size - *n, fmt, ap);
    va_end(ap);
    *n = w < 0 ? size : *n + (size_t)w;
}

void st_format_shape(char *buf, size_t bufsize, const size_t *shape, size_t ndim) {
    if (!buf || bufsize == 0) return;
    size_t n = 0;
    buf[0] = '\0';
    append(buf, bufsize, &n, "[");
    for (size_t i = 0; i < ndim; i++) append(buf, bufsize, &n, "%s%zu", i ? "," : "", shape[i]);
    append(buf, bufsize, &n, "]");
    if (n >= bufsize && bufsize >= 4) memcpy(buf + bufsize - 4, "...", 4);  // cut: say so
}

// ---- UTF-8 ----

// Checks the whole header: shortest-form sequences only, no surrogates,
// nothing above U+10FFFF. Returns the offset of the first bad byte or n.
static size_t utf8_check(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t len;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            len = 2, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return i;
        }
        if (n - i < len) return i;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return i;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
        i += len;
    }
    return n;
}

static size_t utf8_put(char *out, uint32_t cp) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    } else if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    } else if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

// ---- JSON ----
// Recursive descent over the header bytes, directed by the safetensors
// schema; values the schema does not use (unknown keys in a tensor entry)
// are still parsed fully so that malformed JSON is always rejected.

typedef struct {
    const uint8_t *s;
    size_t n, pos;
    int depth;
    const char *path;
    CtError *err;
} Json;

typedef struct {
    int negative, is_int;
    uint64_t mag;  // valid when is_int
} JsonNum;

static int json_fail(Json *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int json_fail(Json *j, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ct_errorf(j->err, "%s: invalid JSON header at byte %zu: %s", j->path, j->pos + 8, msg);
}

static void json_ws(Json *j) {
    while (j->pos < j->n) {
        uint8_t c = j->s[j->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        j->pos++;
    }
}

static int json_peek(Json *j) {
    json_ws(j);
    return j->pos < j->n ? j->s[j->pos] : -1;
}

static int json_expect(Json *j, char c, const char *what) {
    if (json_peek(j) != c) {
        if (j->pos >= j->n) return json_fail(j, "header ends where %s was expected", what);
        return json_fail(j, "expected %s", what);
    }
    j->pos++;
    return 0;
}

static int hex4(Json *j, uint32_t *out) {
    if (j->n - j->pos < 4) return json_fail(j, "truncated \\u escape");
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
        uint8_t c = j->s[j->pos++];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
        else return json_fail(j, "bad hex digit in \\u escape");
    }
    *out = v;
    return 0;
}

// Parses a string into a new NUL-terminated buffer. The header is already
// known to be valid UTF-8; escapes are decoded and NUL is refused because
// names are C strings.
static int json_string(Json *j, char **out) {
    *out = NULL;
    if (json_peek(j) != '"') return json_fail(j, j->pos >= j->n ? "header ends where a string was expected" : "expected a string");
    j->pos++;
    size_t start = j->pos, end = start;
    while (end < j->n && j->s[end] != '"') end += (j->s[end] == '\\') ? 2 : 1;
    if (end >= j->n) return json_fail(j, "unterminated string");
    char *buf = ct_malloc(end - start + 1);  // decoded is never longer
    size_t len = 0;
    while (j->pos < end) {
        uint8_t c = j->s[j->pos];
        if (c < 0x20) {
            free(buf);
            return json_fail(j, "control character 0x%02x in string", c);
        }
        if (c != '\\') {
            buf[len++] = (char)c;
            j->pos++;
            continue;
        }
        j->pos++;
        uint8_t e = j->s[j->pos++];
        uint32_t cp;
        switch (e) {
        case '"': buf[len++] = '"'; break;
        case '\\': buf[len++] = '\\'; break;
        case '/': buf[len++] = '/'; break;
        case 'b': buf[len++] = '\b'; break;
        case 'f': buf[len++] = '\f'; break;
        case 'n': buf[len++] = '\n'; break;
        case 'r': buf[len++] = '\r'; break;
        case 't': buf[len++] = '\t'; break;
        case 'u':
            if (hex4(j, &cp)) goto fail;
            if (cp >= 0xd800 && cp <= 0xdbff) {
                uint32_t lo;
                if (j->n - j->pos < 2 || j->s[j->pos] != '\\' || j->s[j->pos + 1] != 'u') {
                    json_fail(j, "unpaired surrogate in \\u escape");
                    goto fail;
                }
                j->pos += 2;
                if (hex4(j, &lo)) goto fail;
                if (lo < 0xdc00 || lo > 0xdfff) {
                    json_fail(j, "unpaired surrogate in \\u escape");
                    goto fail;
                }
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                json_fail(j, "unpaired surrogate in \\u escape");
                goto fail;
            }
            if (cp == 0) {
                json_fail(j, "\\u0000 in string");
                goto fail;
            }
            // A \u escape's UTF-8 is at most as long as the escape itself.
            len += utf8_put(buf + len, cp);
            break;
        default:
            j->pos--;
            json_fail(j, "bad escape '\\%c'", e >= 0x20 && e < 0x7f ? e : '?');
            goto fail;
        }
        if (j->pos > end) {  // an escape ran into the closing quote
            json_fail(j, "unterminated string");
            goto fail;
        }
    }
    j->pos = end + 1;
    buf[len] = '\0';
    *out = buf;
    return 0;
fail:
    free(buf);
    return -1;
}

static int is_digit(int c) { return c >= '0' && c <= '9'; }

static int json_number(Json *j, JsonNum *num) {
    memset(num, 0, sizeof *num);
    num->is_int = 1;
    json_ws(j);
    if (j->pos < j->n && j->s[j->pos] == '-') num->negative = 1, j->pos++;
    if (j->pos >= j->n || !is_digit(j->s[j->pos])) return json_fail(j, "bad number");
    if (j->s[j->pos] == '0' && j->pos + 1 < j->n && is_digit(j->s[j->pos + 1]))
        return json_fail(j, "number with a leading zero");
    int overflow = 0;
    while (j->pos < j->n && is_digit(j->s[j->pos])) {
        uint64_t d = j->s[j->pos++] - '0';
        if (__builtin_mul_overflow(num->mag, 10, &num->mag) || __builtin_add_overflow(num->mag, d, &num->mag))
            overflow = 1;
    }
    if (j->pos < j->n && j->s[j->pos] == '.') {
        num->is_int = 0, j->pos++;
        if (j->pos >= j->n || !is_digit(j->s[j->pos])) return json_fail(j, "bad number");
        while (j->pos < j->n && is_digit(j->s[j->pos])) j->pos++;
    }
    if (j->pos < j->n && (j->s[j->pos] == 'e' || j->s[j->pos] == 'E')) {
        num->is_int = 0, j->pos++;
        if (j->pos < j->n && (j->s[j->pos] == '+' || j->s[j->pos] == '-')) j->pos++;
        if (j->pos >= j->n || !is_digit(j->s[j->pos])) return json_fail(j, "bad number");
        while (j->pos < j->n && is_digit(j->s[j->pos])) j->pos++;
    }
    if (num->is_int && overflow) return json_fail(j, "integer overflows 64 bits");
    if (num->negative && num->mag == 0) num->negative = 0;  // -0 is 0
    return 0;
}

// Sorts keys and reports the first duplicate; frees nothing.
static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int keys_check_unique(Json *j, char **keys, size_t n, const char *where) {
    if (n < 2) return 0;
    qsort(keys, n, sizeof *keys, cmp_str);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(keys[i - 1], keys[i]) == 0) {
            char b[ST_NAME_SHOWN];
            return ct_errorf(j->err, "%s: invalid JSON header: duplicate key '%s' in %s ending at byte %zu", j->path,
                             shown(keys[i], b, sizeof b), where, j->pos + 7);
        }
    }
    return 0;
}

static void keys_free(char **keys, size_t n) {
    for (size_t i = 0; i < n; i++) free(keys[i]);
    free(keys);
}

static int json_enter(Json *j) {
    if (++j->depth > ST_MAX_DEPTH) return json_fail(j, "nesting deeper than %d", ST_MAX_DEPTH);
    return 0;
}

static int json_skip_value(Json *j);

static int json_skip_object(Json *j) {
    if (json_expect(j, '{', "'{'") || json_enter(j)) return -1;
    char **keys = NULL;
    size_t n = 0, cap = 0;
    int rc = -1;
    if (json_peek(j) == '}') {
        j->pos++;
        rc = 0;
        goto done;
    }
    for (;;) {
        if (n == cap) keys = ct_realloc(keys, (cap = cap ? 2 * cap : 8) * sizeof *keys);
        if (json_string(j, &keys[n])) goto done;
        n++;
        if (json_expect(j, ':', "':'") || json_skip_value(j)) goto done;
        int c = json_peek(j);
        if (c == ',') {
            j->pos++;
            continue;
        }
        if (json_expect(j, '}', "',' or '}'")) goto done;
        break;
    }
    rc = keys_check_unique(j, keys, n, "an object");
done:
    keys_free(keys, n);
    j->depth--;
    return rc;
}

static int json_skip_value(Json *j) {
    int c = json_peek(j);
    if (c == '{') return json_skip_object(j);
    if (c == '"') {
        char *s;
        if (json_string(j, &s)) return -1;
        free(s);
        return 0;
    }
    if (c == '-' || is_digit(c)) {
        JsonNum num;
        return json_number(j, &num);
    }
    if (c == '[') {
        j->pos++;
        if (json_enter(j)) return -1;
        if (json_peek(j) == ']') {
            j->pos++;
        } else {
            for (;;) {
                if (json_skip_value(j)) return -1;
                if (json_peek(j) == ',') {
                    j->pos++;
                    continue;
                }
                if (json_expect(j, ']', "',' or ']'")) return -1;
                break;
            }
        }
        j->depth--;
        return 0;
    }
    static const char *const lits[] = {"true", "false", "null"};
    for (int k = 0; k < 3; k++) {
        size_t l = strlen(lits[k]);
        if (j->n - j->pos >= l && memcmp(j->s + j->pos, lits[k], l) == 0) {
            j->pos += l;
            return 0;
        }
    }
    if (c < 0) return json_fail(j, "header ends where a value was expected");
    return json_fail(j, "unexpected character '%c'", c >= 0x20 && c < 0x7f ? c : '?');
}

// An array of non-negative integers, at most max_n of them.
static int json_uint_array(Json *j, uint64_t *out, size_t max_n, size_t *n_out, const char *tname,
                           const char *field) {
    char b[ST_NAME_SHOWN];
    *n_out = 0;
    if (json_peek(j) != '[')
        return ct_errorf(j->err, "%s: tensor '%s': %s must be an array of integers", j->path,
                         shown(tname, b, sizeof b), field);
    j->pos++;
    if (json_enter(j)) return -1;
    if (json_peek(j) == ']') {
        j->pos++;
        j->depth--;
        return 0;
    }
    for (;;) {
        int c = json_peek(j);
        if (c != '-' && !is_digit(c)) {
            if (c == '[' || c == '{' || c == '"' || c == 't' || c == 'f' || c == 'n')
                return ct_errorf(j->err, "%s: tensor '%s': %s must be an array of integers", j->path,
                                 shown(tname, b, sizeof b), field);
            return json_fail(j, "bad value in %s", field);
        }
        JsonNum num;
        if (json_number(j, &num)) return -1;
        if (!num.is_int)
            return ct_errorf(j->err, "%s: tensor '%s': %s holds a non-integer", j->path, shown(tname, b, sizeof b),
                             field);
        if (num.negative)
            return ct_errorf(j->err, "%s: tensor '%s': %s holds a negative value -%llu", j->path,
                             shown(tname, b, sizeof b), field, (unsigned long long)num.mag);
        if (num.mag > SIZE_MAX)
            return ct_errorf(j->err, "%s: tensor '%s': %s value %llu is too large", j->path,
                             shown(tname, b, sizeof b), field, (unsigned long long)num.mag);
        if (*n_out == max_n)
            return ct_errorf(j->err, "%s: tensor '%s': %s has more than %zu entries", j->path,
                             shown(tname, b, sizeof b), field, max_n);
        out[(*n_out)++] = num.mag;
        if (json_peek(j) == ',') {
            j->pos++;
            continue;
        }
        if (json_expect(j, ']', "',' or ']'")) return -1;
        break;
    }
    j->depth--;
    return 0;
}

// ---- header schema ----

// A tensor entry is read in two passes over the same bytes: the first checks
// that the whole object is well-formed JSON with unique keys (unknown keys are
// allowed, as in the reference reader), the second picks out the fields.
static int parse_tensor(Json *j, StTensor *t) {
    char b[ST_NAME_SHOWN];
    const char *tn = shown(t->name, b, sizeof b);
    if (json_peek(j) != '{') return ct_errorf(j->err, "%s: tensor '%s': entry must be an object", j->path, tn);
    size_t start = j->pos;
    if (json_skip_value(j)) return -1;
    size_t end = j->pos;
    j->pos = start + 1;
    j->depth++;
    int have_dtype = 0, have_shape = 0, have_offsets = 0;
    while (json_peek(j) != '}') {
        char *key;
        if (json_string(j, &key)) return -1;
        int rc = json_expect(j, ':', "':'");
        if (rc) {
            free(key);
            return -1;
        }
        if (strcmp(key, "dtype") == 0) {
            have_dtype = 1;
            char *dt = NULL;
            if (json_peek(j) != '"') {
                rc = ct_errorf(j->err, "%s: tensor '%s': dtype must be a string", j->path, tn);
            } else if ((rc = json_string(j, &dt)) == 0) {
                const StDtypeInfo *info = dtype_lookup(dt);
                if (!info) {
                    char db[32];
                    rc = ct_errorf(j->err, "%s: tensor '%s': unknown dtype '%s'", j->path, tn, shown(dt, db, sizeof db));
                } else {
                    t->dtype = info->dtype;
                    snprintf(t->dtype_name, sizeof t->dtype_name, "%s", info->name);
                }
            }
            free(dt);
        } else if (strcmp(key, "shape") == 0) {
            have_shape = 1;
            uint64_t dims[ST_MAX_DIMS];
            rc = json_uint_array(j, dims, ST_MAX_DIMS, &t->ndim, t->name, "shape");
            for (size_t i = 0; rc == 0 && i < t->ndim; i++) t->shape[i] = (size_t)dims[i];
        } else if (strcmp(key, "data_offsets") == 0) {
            have_offsets = 1;
            uint64_t off[2];
            size_t n = 0;
            rc = json_uint_array(j, off, 2, &n, t->name, "data_offsets");
            if (rc == 0 && n != 2)
                rc = ct_errorf(j->err, "%s: tensor '%s': data_offsets must hold exactly 2 integers", j->path, tn);
            if (rc == 0) t->begin = (size_t)off[0], t->end = (size_t)off[1];
        } else {
            rc = json_skip_value(j);  // unknown fields are allowed, as in the reference reader
        }
        free(key);
        if (rc) return -1;
        if (json_peek(j) == ',') j->pos++;
    }
    j->depth--;
    j->pos = end;
    if (!have_dtype || !have_shape || !have_offsets)
        return ct_errorf(j->err, "%s: tensor '%s': entry lacks %s", j->path, tn,
                         !have_dtype ? "\"dtype\"" : !have_shape ? "\"shape\"" : "\"data_offsets\"");
    return 0;
}

static int parse_metadata(Json *j, SafeTensors *st) {
    if (json_peek(j) != '{') return ct_errorf(j->err, "%s: __metadata__ must be an object of strings", j->path);
    j->pos++;
    if (json_enter(j)) return -1;
    size_t cap = 0;
    if (json_peek(j) != '}') {
        for (;;) {
            if (st->n_meta == cap) {
                cap = cap ? 2 * cap : 8;
                st->meta_keys = ct_realloc(st->meta_keys, cap * sizeof *st->meta_keys);
                st->meta_values = ct_realloc(st->meta_values, cap * sizeof *st->meta_values);
            }
            size_t i = st->n_meta;
            if (json_string(j, &st->meta_keys[i])) return -1;
            st->meta_values[i] = NULL;
            st->n_meta++;
            if (json_expect(j, ':', "':'")) return -1;
            if (json_peek(j) != '"') {
                char b[ST_NAME_SHOWN];
                return ct_errorf(j->err, "%s: __metadata__ value of '%s' must be a string", j->path,
                                 shown(st->meta_keys[i], b, sizeof b));
            }
            if (json_string(j, &st->meta_values[i])) return -1;
            if (json_peek(j) == ',') {
                j->pos++;
                continue;
            }
            if (json_expect(j, '}', "',' or '}'")) return -1;
            break;
        }
    } else {
        j->pos++;
    }
    j->depth--;
    // Sort key/value pairs together by key and look for duplicates.
    size_t n = st->n_meta;
    for (size_t a = 1; a < n; a++)  // insertion sort: metadata is small
        for (size_t b = a; b > 0 && strcmp(st->meta_keys[b - 1], st->meta_keys[b]) > 0; b--) {
            char *k = st->meta_keys[b], *v = st->meta_values[b];
            st->meta_keys[b] = st->meta_keys[b - 1], st->meta_values[b] = st->meta_values[b - 1];
            st->meta_keys[b - 1] = k, st->meta_values[b - 1] = v;
        }
    for (size_t a = 1; a < n; a++)
        if (strcmp(st->meta_keys[a - 1], st->meta_keys[a]) == 0) {
            char b[ST_NAME_SHOWN];
            return ct_errorf(j->err, "%s: invalid JSON header: duplicate key '%s' in __metadata__", j->path,
                             shown(st->meta_keys[a], b, sizeof b));
        }
    return 0;
}

static int parse_header(Json *j, SafeTensors *st) {
    if (json_peek(j) != '{') return json_fail(j, "the header is not a JSON object");
    j->pos++;
    if (json_enter(j)) return -1;
    int have_meta = 0;
    size_t cap = 0;
    if (json_peek(j) == '}') {
        j->pos++;
    } else {
        for (;;) {
            char *key;
            if (json_string(j, &key)) return -1;
            if (json_expect(j, ':', "':'")) {
                free(key);
                return -1;
            }
            if (strcmp(key, "__metadata__") == 0) {
                free(key);
                if (have_meta)
                    return ct_errorf(j->err, "%s: invalid JSON header: duplicate key '__metadata__'", j->path);
                have_meta = 1;
                if (parse_metadata(j, st)) return -1;
            } else {
                if (st->n_tensors == cap) {
                    cap = cap ? 2 * cap : 64;
                    st->tensors = ct_realloc(st->tensors, cap * sizeof *st->tensors);
                }
                StTensor *t = &st->tensors[st->n_tensors++];
                memset(t, 0, sizeof *t);
                t->name = key;
                if (parse_tensor(j, t)) return -1;
            }
            if (json_peek(j) == ',') {
                j->pos++;
                continue;
            }
            if (json_expect(j, '}', "',' or '}'")) return -1;
            break;
        }
    }
    j->depth--;
    if (json_peek(j) >= 0) return json_fail(j, "trailing characters after the header object");
    return 0;
}

// ---- validation ----

static int cmp_tensor_name(const void *a, const void *b) {
    return strcmp(((const StTensor *)a)->name, ((const StTensor *)b)->name);
}

static int cmp_name_key(const void *key, const void *elem) {
    return strcmp((const char *)key, ((const StTensor *)elem)->name);
}

static int cmp_tensor_begin(const void *a, const void *b) {
    const StTensor *x = *(const StTensor *const *)a, *y = *(const StTensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static int validate_tensor(const SafeTensors *st, StTensor *t, CtError *err) {
    char b[ST_NAME_SHOWN], sb[256];
    const char *tn = shown(t->name, b, sizeof b);
    st_format_shape(sb, sizeof sb, t->shape, t->ndim);
    if (ct_mul_sizes(&t->numel, t->shape, t->ndim))
        return ct_errorf(err, "%s: tensor '%s': shape %s has too many elements", st->path, tn, sb);
    size_t bits, nbytes;
    if (ct_mul_size(&bits, t->numel, dtype_lookup(t->dtype_name)->bits))
        return ct_errorf(err, "%s: tensor '%s': shape %s of dtype %s is too large", st->path, tn, sb, t->dtype_name);
    if (bits % 8)
        return ct_errorf(err, "%s: tensor '%s': shape %s of dtype %s is not a whole number of bytes", st->path, tn,
                         sb, t->dtype_name);
    nbytes = bits / 8;
    if (t->end < t->begin)
        return ct_errorf(err, "%s: tensor '%s': data_offsets [%zu,%zu] end before they begin", st->path, tn, t->begin,
                         t->end);
    if (t->end > st->data_len)
        return ct_errorf(err, "%s: tensor '%s': data_offsets [%zu,%zu] are outside the data section of %zu bytes",
                         st->path, tn, t->begin, t->end, st->data_len);
    if (t->end - t->begin != nbytes)
        return ct_errorf(err,
                         "%s: tensor '%s': data_offsets [%zu,%zu] hold %zu bytes but shape %s of dtype %s "
                         "needs %zu (size mismatch)",
                         st->path, tn, t->begin, t->end, t->end - t->begin, sb, t->dtype_name, nbytes);
    return 0;
}

static int validate_tensors(SafeTensors *st, CtError *err) {
    // Duplicate names first: they are a JSON error, and the sort serves st_find.
    // (A header without tensors has no array: qsort must not see NULL.)
    if (st->n_tensors > 1) qsort(st->tensors, st->n_tensors, sizeof *st->tensors, cmp_tensor_name);
    for (size_t i = 1; i < st->n_tensors; i++) {
        if (strcmp(st->tensors[i - 1].name, st->tensors[i].name) == 0) {
            char b[ST_NAME_SHOWN];
            return ct_errorf(err, "%s: invalid JSON header: duplicate tensor name '%s'", st->path,
                             shown(st->tensors[i].name, b, sizeof b));
        }
    }
    for (size_t i = 0; i < st->n_tensors; i++)
        if (validate_tensor(st, &st->tensors[i], err)) return -1;
    if (st->n_tensors < 2) return 0;
    const StTensor **by_begin = ct_malloc_array(st->n_tensors, sizeof *by_begin);
    for (size_t i = 0; i < st->n_tensors; i++) by_begin[i] = &st->tensors[i];
    qsort(by_begin, st->n_tensors, sizeof *by_begin, cmp_tensor_begin);
    int rc = 0;
    for (size_t i = 1; i < st->n_tensors && rc == 0; i++) {
        const StTensor *a = by_begin[i - 1], *c = by_begin[i];
        if (c->begin < a->end) {  // empty tensors never overlap anything
            char b1[ST_NAME_SHOWN], b2[ST_NAME_SHOWN];
            rc = ct_errorf(err, "%s: tensors '%s' [%zu,%zu] and '%s' [%zu,%zu] overlap", st->path,
                           shown(a->name, b1, sizeof b1), a->begin, a->end, shown(c->name, b2, sizeof b2), c->begin,
                           c->end);
        }
    }
    free(by_begin);
    return rc;
}

// ---- open / close ----

void st_close(SafeTensors *st) {
    if (!st) return;
    for (size_t i = 0; i < st->n_tensors; i++) free(st->tensors[i].name);
    free(st->tensors);
    for (size_t i = 0; i < st->n_meta; i++) {
        free(st->meta_keys[i]);
        free(st->meta_values[i]);
    }
    free(st->meta_keys);
    free(st->meta_values);
    free(st->file);
    free(st->path);
    memset(st, 0, sizeof *st);
}

int st_open(SafeTensors *st, const char *path, CtError *err) {
    memset(st, 0, sizeof *st);
    if (ct_read_file(path, &st->file, &st->file_len, ST_MAX_FILE, err)) return -1;
    st->path = ct_strdup(path);
    if (st->file_len < 8) {
        ct_errorf(err, "%s: truncated: %zu bytes, shorter than the 8-byte header length", path, st->file_len);
        goto fail;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | st->file[i];
    if (hlen > ST_MAX_HEADER) {
        ct_errorf(err, "%s: header length %llu is larger than the limit of %llu bytes (not a safetensors file?)",
                  path, (unsigned long long)hlen, (unsigned long long)ST_MAX_HEADER);
        goto fail;
    }
    if (hlen > st->file_len - 8) {
        ct_errorf(err, "%s: truncated or corrupt: header length %llu is past the end of the file (%zu bytes)", path,
                  (unsigned long long)hlen, st->file_len);
        goto fail;
    }
    const uint8_t *hdr = st->file + 8;
    size_t bad = utf8_check(hdr, (size_t)hlen);
    if (bad < hlen) {
        ct_errorf(err, "%s: header is not valid UTF-8 (byte %zu)", path, bad + 8);
        goto fail;
    }
    st->data = hdr + hlen;
    st->data_len = st->file_len - 8 - (size_t)hlen;
    Json j = {.s = hdr, .n = (size_t)hlen, .pos = 0, .depth = 0, .path = path, .err = err};
    if (parse_header(&j, st) || validate_tensors(st, err)) goto fail;
    return 0;
fail:
    st_close(st);
    return -1;
}

// ---- lookup ----

const StTensor *st_find(const SafeTensors *st, const char *name) {
    if (!st || !name || st->n_tensors == 0) return NULL;
    return bsearch(name, st->tensors, st->n_tensors, sizeof *st->tensors, cmp_name_key);
}

const char *st_metadata_get(const SafeTensors *st, const char *key) {
    if (!st || !key || st->n_meta == 0) return NULL;
    char **hit = bsearch(&key, st->meta_keys, st->n_meta, sizeof *st->meta_keys, cmp_str);
    return hit ? st->meta_values[hit - st->meta_keys] : NULL;
}

void st_print(const SafeTensors *st, FILE *f) {
    for (size_t i = 0; i < st->n_tensors; i++) {
        const StTensor *t = &st->tensors[i];
        char b[ST_NAME_SHOWN], sb[256];
        st_format_shape(sb, sizeof sb, t->shape, t->ndim);
        fprintf(f, "%s %s %s\n", shown(t->name, b, sizeof b), t->dtype_name, sb);
    }
}

size_t st_find_missing(const SafeTensors *st, const char *const *required, size_t n_required,
                       const char **missing, size_t max_missing) {
    size_t n = 0;
    for (size_t i = 0; i < n_required; i++) {
        if (st_find(st, required[i])) continue;
        if (missing && n < max_missing) missing[n] = required[i];
        n++;
    }
    return n;
}

int st_require(const SafeTensors *st, const char *const *required, size_t n_required, CtError *err) {
    if (!st || !st->path) return ct_errorf(err, "safetensors: checking tensors of a file that is not open");
    enum { SHOW = 4 };
    const char *missing[SHOW];
    size_t n = st_find_missing(st, required, n_required, missing, SHOW);
    if (n == 0) return 0;
    char list[CT_ERROR_MAX / 2];
    size_t len = 0, listed = 0;
    list[0] = '\0';
    for (size_t i = 0; i < n && i < SHOW; i++) {
        char b[ST_NAME_SHOWN];
        int w = snprintf(list + len, sizeof list - len, "%s'%s'", i ? ", " : "", shown(missing[i], b, sizeof b));
        if (w < 0 || (size_t)w >= sizeof list - len) {
            list[len] = '\0';
            break;
        }
        len += (size_t)w;
        listed++;
    }
    if (n > listed) snprintf(list + len, sizeof list - len, " and %zu more", n - listed);
    return ct_errorf(err, "%s: missing %zu of %zu required tensors: %s", st->path, n, n_required, list);
}

// ---- conversion ----

static float f32_from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

// IEEE half to single, exactly: subnormal halves are normal singles.
static float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    if (e == 0) {
        if (m == 0) return f32_from_bits(sign);
        uint32_t e32 = 113;  // 127 - 14, then one down per normalising shift
        while (!(m & 0x400)) m <<= 1, e32--;
        return f32_from_bits(sign | (e32 << 23) | ((m & 0x3ff) << 13));
    }
    if (e == 31) return f32_from_bits(sign | 0x7f800000u | (m << 13));  // inf, nan (payload kept)
    return f32_from_bits(sign | ((e + 112) << 23) | (m << 13));
}

int st_read_f32(const SafeTensors *st, const char *name, const size_t *shape, size_t ndim, float *dst,
                CtError *err) {
    char b[ST_NAME_SHOWN];
    if (!st || !st->path) return ct_errorf(err, "safetensors: reading '%s' from a file that is not open", name ? name : "");
    if (!name) return ct_errorf(err, "%s: no tensor name given", st->path);
    const StTensor *t = st_find(st, name);
    if (!t) return ct_errorf(err, "%s: missing tensor '%s'", st->path, shown(name, b, sizeof b));
    int same = t->ndim == ndim;
    for (size_t i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char have[256], want[256];
        st_format_shape(have, sizeof have, t->shape, t->ndim);
        st_format_shape(want, sizeof want, shape, ndim);
        return ct_errorf(err, "%s: tensor '%s' has shape %s, expected %s", st->path, shown(name, b, sizeof b), have,
                         want);
    }
    if (t->dtype == ST_OTHER)
        return ct_errorf(err, "%s: tensor '%s' has dtype %s; only F32, F16 and BF16 convert to float32", st->path,
                         shown(name, b, sizeof b), t->dtype_name);
    const uint8_t *p = st->data + t->begin;
    size_t n = t->numel;
    switch (t->dtype) {
    case ST_F32:
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        if (n) memcpy(dst, p, n * sizeof(float));
#else
        for (size_t i = 0; i < n; i++)
            dst[i] = f32_from_bits((uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
                                   (uint32_t)p[4 * i + 3] << 24);
#endif
        break;
    case ST_F16:
        for (size_t i = 0; i < n; i++) dst[i] = f16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        break;
    case ST_BF16:
        for (size_t i = 0; i < n; i++) dst[i] = f32_from_bits(((uint32_t)p[2 * i] | (uint32_t)p[2 * i + 1] << 8) << 16);
        break;
    default:
        break;
    }
    return 0;
}
